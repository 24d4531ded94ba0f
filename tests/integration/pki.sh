#!/usr/bin/env bash
# pki.sh BINDIR - checks certs/make-pki.sh: every file, chain and CRL verdicts, subject
# serialNumbers (HSA-ids), key type and mode, and that a second run changes nothing.
# BINDIR is unused (the script needs only openssl). Works in a temp dir it removes.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
MK="$SRC/certs/make-pki.sh"
T=$(mktemp -d /tmp/intygsgw-pki-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
D="$T/pki"
fails=0
fail() {
        echo "FAIL: $*" >&2
        fails=$((fails + 1))
}

out1=$(bash "$MK" "$D")
# keep a byte copy and timestamps of the first run
mkdir "$T/copy"
cp -p "$D"/*.crt "$D"/*.key "$D"/crl.pem "$T/copy/"
stat -c '%n %Y' "$D"/* >"$T/mtimes1"
sleep 1
out2=$(bash "$MK" "$D")
[ "$out1" = "$out2" ] || fail "second run printed something else"

CERTS="ca gateway gateway-client fk region-a region-b region-c admin revoked expired foreign-ca foreign"
for n in $CERTS; do
        [ -s "$D/$n.crt" ] || fail "missing $n.crt"
        [ -s "$D/$n.key" ] || fail "missing $n.key"
done
[ -s "$D/crl.pem" ] || fail "missing crl.pem"

# idempotent: byte-identical, untouched
for f in "$T/copy"/*; do
        b=$(basename "$f")
        cmp -s "$f" "$D/$b" || fail "$b changed on the second run"
done
stat -c '%n %Y' "$D"/* >"$T/mtimes2"
cmp -s "$T/mtimes1" "$T/mtimes2" || fail "second run touched files"

# printed HSA-ids, one line per client certificate
for want in "region-a SE2321000016-7P3K" "region-b SE2321000131-S0AB" \
        "region-c SE2321000032-U9X2" "admin SE2321000016-ADM1" "gateway-client SE2321000016-GW01"; do
        grep -qx "$want" <<<"$out1" || fail "output lacks '$want'"
done

verify() { openssl verify -CAfile "$D/ca.crt" -crl_check -CRLfile "$D/crl.pem" "$D/$1.crt" 2>&1; }
for n in gateway gateway-client fk region-a region-b region-c admin; do
        v=$(verify "$n") || fail "$n does not verify: $v"
done
v=$(verify revoked) && fail "revoked verifies"
grep -q "certificate revoked" <<<"$v" || fail "revoked: not reported revoked: $v"
v=$(verify expired) && fail "expired verifies"
grep -q "certificate has expired" <<<"$v" || fail "expired: not reported expired: $v"
v=$(verify foreign) && fail "foreign verifies against our CA"
grep -q "unable to get local issuer certificate" <<<"$v" || fail "foreign: unexpected $v"
openssl verify -CAfile "$D/foreign-ca.crt" "$D/foreign.crt" >/dev/null 2>&1 ||
        fail "foreign does not verify against its own CA"

# CRL: signed by our CA, valid now, lists exactly the revoked certificate
openssl crl -in "$D/crl.pem" -CAfile "$D/ca.crt" -noout 2>&1 | grep -q "verify OK" ||
        fail "crl.pem signature"
next=$(openssl crl -in "$D/crl.pem" -noout -nextupdate | sed 's/^nextUpdate=//')
[ "$(date -d "$next" +%s)" -gt "$(date +%s)" ] || fail "crl.pem expired ($next)"
rserial=$(openssl x509 -in "$D/revoked.crt" -noout -serial | sed 's/^serial=//')
openssl crl -in "$D/crl.pem" -noout -text | grep -q "Serial Number: $rserial" ||
        fail "crl.pem does not list revoked.crt ($rserial)"
[ "$(openssl crl -in "$D/crl.pem" -noout -text | grep -c 'Serial Number:')" = 1 ] ||
        fail "crl.pem lists more than one certificate"

serial_of() {
        openssl x509 -in "$D/$1.crt" -noout -subject -nameopt RFC2253,sep_comma_plus |
                tr ',' '\n' | sed -n 's/^subject=//; s/^serialNumber=//p'
}
check_serial() {
        local got
        got=$(serial_of "$1")
        [ "$got" = "$2" ] || fail "$1 serialNumber '$got', want '$2'"
}
check_serial region-a SE2321000016-7P3K
check_serial region-b SE2321000131-S0AB
check_serial region-c SE2321000032-U9X2
check_serial admin SE2321000016-ADM1
check_serial gateway-client SE2321000016-GW01
check_serial fk 2021005521

# EKU and SAN
for n in gateway fk; do
        e=$(openssl x509 -in "$D/$n.crt" -noout -ext extendedKeyUsage,subjectAltName)
        grep -q "TLS Web Server Authentication" <<<"$e" || fail "$n lacks serverAuth"
        grep -q "TLS Web Client Authentication" <<<"$e" && fail "$n has clientAuth"
        grep -q "DNS:localhost" <<<"$e" || fail "$n SAN lacks localhost"
        grep -q "IP Address:127.0.0.1" <<<"$e" || fail "$n SAN lacks 127.0.0.1"
        grep -q "IP Address:0:0:0:0:0:0:0:1" <<<"$e" || fail "$n SAN lacks ::1"
done
for n in gateway-client region-a region-b region-c admin revoked expired foreign; do
        e=$(openssl x509 -in "$D/$n.crt" -noout -ext extendedKeyUsage)
        grep -q "TLS Web Client Authentication" <<<"$e" || fail "$n lacks clientAuth"
        grep -q "TLS Web Server Authentication" <<<"$e" && fail "$n has serverAuth"
done
openssl verify -CAfile "$D/ca.crt" -purpose sslclient "$D/region-a.crt" >/dev/null 2>&1 ||
        fail "region-a not valid for sslclient"
openssl verify -CAfile "$D/ca.crt" -purpose sslserver "$D/region-a.crt" >/dev/null 2>&1 &&
        fail "region-a valid for sslserver"

# keys: EC P-256, mode 0600, matching their certificate
for n in $CERTS; do
        k="$D/$n.key"
        [ "$(stat -c %a "$k")" = 600 ] || fail "$n.key mode $(stat -c %a "$k")"
        openssl pkey -in "$k" -noout -text 2>/dev/null | grep -q "NIST CURVE: P-256" ||
                fail "$n.key is not EC P-256"
        a=$(openssl pkey -in "$k" -pubout 2>/dev/null)
        b=$(openssl x509 -in "$D/$n.crt" -noout -pubkey)
        [ "$a" = "$b" ] || fail "$n.key does not match $n.crt"
done

# a run on an incomplete dir rebuilds it completely and consistently
rm -f "$D/region-b.key"
bash "$MK" "$D" >/dev/null
[ -s "$D/region-b.key" ] || fail "rebuild did not recreate region-b.key"
verify region-a >/dev/null || fail "rebuilt region-a does not verify"
cmp -s "$T/copy/ca.crt" "$D/ca.crt" && fail "rebuild kept the old CA with new leaves"

# usage error
bash "$MK" >/dev/null 2>&1 && fail "no argument accepted"

if [ "$fails" -ne 0 ]; then
        echo "pki.sh: $fails failure(s)" >&2
        exit 1
fi
echo "pki.sh: ok"
