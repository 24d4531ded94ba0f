#!/usr/bin/env bash
# fksim.sh BINDIR - end-to-end check of the FK simulator with curl: OK then INFO for a repeat,
# /_sim/received counts, revocations, VALIDATION_ERROR / TECHNICAL_ERROR / HTTP 500 / cut
# answers, down and up through the control listener, a client without a certificate (and one
# from a foreign CA) refused at the handshake, hostile inputs, clean exit 0 on SIGTERM.
# Everything on 127.0.0.1; fk-sim is always killed on exit; every wait is bounded.
set -uo pipefail

BIN=${1:?usage: fksim.sh BINDIR}
SIM="$BIN/fk-sim"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DATA="$SRC/tests/data/lisjp-v1"
T=$(mktemp -d /tmp/intygsgw-fksim-test.XXXXXX)
PID=
cleanup() {
        if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
                kill -KILL "$PID" 2>/dev/null
                wait "$PID" 2>/dev/null
        fi
        rm -rf "$T"
}
trap cleanup EXIT

fails=0
fail() {
        echo "FAIL: $*" >&2
        fails=$((fails + 1))
}
expect_eq() { # what got want
        [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
expect_has() { # what haystack needle
        grep -qF -- "$3" <<<"$2" || fail "$1: '$3' not in: $(head -c 400 <<<"$2")"
}

[ -x "$SIM" ] || { echo "FAIL: no $SIM" >&2; exit 1; }
PKI="$T/pki"
bash "$SRC/certs/make-pki.sh" "$PKI" >/dev/null || { echo "FAIL: make-pki.sh" >&2; exit 1; }

"$SIM" --cert "$PKI/fk.crt" --key "$PKI/fk.key" --ca "$PKI/ca.crt" --crl "$PKI/crl.pem" \
        --listen 127.0.0.1:0 \
        --control 127.0.0.1:0 --port-file "$T/port" --control-port-file "$T/cport" \
        --ready-file "$T/ready" --seed 7 2>"$T/sim.log" &
PID=$!
for _ in $(seq 1 100); do
        [ -s "$T/ready" ] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
done
[ -s "$T/ready" ] || { echo "FAIL: fk-sim not ready" >&2; cat "$T/sim.log" >&2; exit 1; }
P=$(cat "$T/port")
C=$(cat "$T/cport")
URL="https://localhost:$P/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21"
RURL="https://localhost:$P/clinicalprocess/healthcond/certificate/RevokeCertificate/2/rivtabp21"
CTL="http://127.0.0.1:$C/_sim"

wrap() { # FILE [NEWID]: bare request element -> SOAP 1.1 envelope with LogicalAddress
        local id=${2:-}
        printf '<?xml version="1.0" encoding="UTF-8"?>\n'
        printf '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        printf ' xmlns:add="urn:riv:itintegration:registry:1"><soapenv:Header>'
        printf '<add:LogicalAddress>2021005521</add:LogicalAddress></soapenv:Header><soapenv:Body>'
        if [ -n "$id" ]; then # the first extension is intyg/intygs-id/extension
                sed '1{/^<?xml/d}' "$1" | sed "0,/<ns3:extension>[^<]*</s//<ns3:extension>$id</"
        else
                sed '1{/^<?xml/d}' "$1"
        fi
        printf '</soapenv:Body></soapenv:Envelope>\n'
}
wrap "$DATA/pass-minimal.xml" >"$T/reg.xml"
wrap "$DATA/lisjp.xml" fksim-test-2 >"$T/reg2.xml"
wrap "$DATA/revokerequest.xml" >"$T/rev.xml"
ID=$(grep -o '<ns3:extension>[^<]*' "$DATA/pass-minimal.xml" | head -1 | sed 's/.*>//')
expect_eq "sample id" "$ID" 1234567

TLS=(--cert "$PKI/region-a.crt" --key "$PKI/region-a.key" --cacert "$PKI/ca.crt")
post() { # url file -> "CODE\nBODY"
        curl -sS --max-time 10 "${TLS[@]}" -H 'Content-Type: text/xml; charset=utf-8' \
                -H 'SOAPAction: "urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3:RegisterCertificate"' \
                --data-binary @"$2" -w '\n%{http_code}' "$1" 2>&1
}
ctl() { curl -sS --max-time 10 "$@" 2>&1; }
config() { ctl -X POST --data "$1" "$CTL/config" >/dev/null || fail "config $1"; }

# 1. OK, then INFO for the repeat; the response is a RegisterCertificateResponse
r=$(post "$URL" "$T/reg.xml")
expect_eq "first register status" "$(tail -1 <<<"$r")" 200
expect_has "first register" "$r" '<core:resultCode>OK</core:resultCode>'
expect_has "response element" "$r" \
        'RegisterCertificateResponse xmlns:rsp="urn:riv:clinicalprocess:healthcond:certificate:RegisterCertificateResponder:3"'
expect_has "response core ns" "$r" 'xmlns:core="urn:riv:clinicalprocess:healthcond:certificate:3"'
r=$(post "$URL" "$T/reg.xml")
expect_has "repeat register" "$r" '<core:resultCode>INFO</core:resultCode>'
expect_has "repeat register text" "$r" '<core:resultText>Certificate already exists</core:resultText>'
r=$(post "$URL" "$T/reg2.xml")
expect_has "second id" "$r" '<core:resultCode>OK</core:resultCode>'
ID2=fksim-test-2

rec=$(ctl "$CTL/received")
expect_eq "received" "$rec" "{\"$ID\":2,\"$ID2\":1}"
# the TLS listener serves /_sim/ too
rec2=$(curl -sS --max-time 10 "${TLS[@]}" "https://localhost:$P/_sim/received")
expect_eq "received over TLS" "$rec2" "$rec"

# 2. revocation recorded separately
r=$(post "$RURL" "$T/rev.xml")
expect_has "revoke" "$r" '<rsp:RevokeCertificateResponse xmlns:rsp="urn:riv:clinicalprocess:healthcond:certificate:RevokeCertificateResponder:2"'
expect_has "revoke ok" "$r" '<core:resultCode>OK</core:resultCode>'
expect_eq "revoked" "$(ctl "$CTL/revoked")" '{"intygId":1}'
expect_eq "received unchanged by revoke" "$(ctl "$CTL/received")" "$rec"

# 3. rejections
config 'reject_rate=1&reject_text=Diagnoskod+saknas'
r=$(post "$URL" "$T/reg2.xml")
expect_eq "reject status" "$(tail -1 <<<"$r")" 200
expect_has "reject code" "$r" '<core:resultCode>ERROR</core:resultCode>'
expect_has "reject id" "$r" '<core:errorId>VALIDATION_ERROR</core:errorId>'
expect_has "reject text" "$r" '<core:resultText>Diagnoskod saknas</core:resultText>'
config 'reject_rate=0&technical_rate=1'
r=$(post "$URL" "$T/reg2.xml")
expect_has "technical" "$r" '<core:errorId>TECHNICAL_ERROR</core:errorId>'
config 'technical_rate=0&fail_500_rate=1'
r=$(post "$URL" "$T/reg2.xml")
expect_eq "fail_500 status" "$(tail -1 <<<"$r")" 500
expect_has "fail_500 fault" "$r" '<faultcode>soap:Server</faultcode>'
config 'fail_500_rate=0'
expect_eq "errors not recorded" "$(ctl "$CTL/received")" "$rec"
expect_eq "attempts" "$(ctl "$CTL/attempts")" "{\"$ID\":2,\"$ID2\":4,\"intygId\":1}"

# 4. cut: the certificate is processed, the answer is cut short
config 'cut_rate=1'
wrap "$DATA/pass-prognos.xml" fksim-test-3 >"$T/reg3.xml"
r=$(post "$URL" "$T/reg3.xml")
grep -q "resultCode" <<<"$r" && grep -q "</soap:Envelope>" <<<"$r" && fail "cut answer complete: $r"
grep -qE '^(000|200)$' <<<"$(tail -1 <<<"$r")" || fail "cut status line $(tail -1 <<<"$r")"
config 'cut_rate=0'
r=$(post "$URL" "$T/reg3.xml")
expect_has "after cut: INFO" "$r" '<core:resultCode>INFO</core:resultCode>'
expect_has "cut was recorded" "$(ctl "$CTL/received")" '"fksim-test-3":2'

# 5. slow answers
config 'slow_ms=600'
start=$(date +%s%N)
r=$(post "$URL" "$T/reg.xml")
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 550 ] || fail "slow_ms=600 answered in ${ms} ms"
config 'slow_ms=0'

# 6. down via the control listener: connections fail; up: they work again
config 'down=1'
r=$(post "$URL" "$T/reg.xml")
grep -q "resultCode" <<<"$r" && fail "down: got an answer: $r"
expect_eq "down status" "$(tail -1 <<<"$r")" 000
expect_has "config shows down" "$(ctl "$CTL/config")" '"down":1'
config 'down=0'
r=$(post "$URL" "$T/reg.xml")
expect_has "up again" "$r" '<core:resultCode>INFO</core:resultCode>'

# 7. refused at the handshake: no client certificate, a foreign CA's certificate
r=$(curl -sS --max-time 10 --cacert "$PKI/ca.crt" --data-binary @"$T/reg.xml" \
        -w '\n%{http_code}' "$URL" 2>&1)
grep -q "resultCode" <<<"$r" && fail "no client cert: answered"
expect_eq "no client cert status" "$(tail -1 <<<"$r")" 000
r=$(curl -sS --max-time 10 --cert "$PKI/foreign.crt" --key "$PKI/foreign.key" \
        --cacert "$PKI/ca.crt" --data-binary @"$T/reg.xml" -w '\n%{http_code}' "$URL" 2>&1)
expect_eq "foreign cert status" "$(tail -1 <<<"$r")" 000
r=$(curl -sS --max-time 10 --cert "$PKI/revoked.crt" --key "$PKI/revoked.key" \
        --cacert "$PKI/ca.crt" --data-binary @"$T/reg.xml" -w '\n%{http_code}' "$URL" 2>&1)
expect_eq "revoked cert status (--crl)" "$(tail -1 <<<"$r")" 000
grep -q "certificate revoked" "$T/sim.log" || fail "revoked: reason not logged"
# the simulator's own certificate is checked by curl against our CA: the foreign CA fails
r=$(curl -sS --max-time 10 "${TLS[@]/$PKI\/ca.crt/$PKI/foreign-ca.crt}" --data-binary @"$T/reg.xml" \
        -w '\n%{http_code}' "$URL" 2>&1)
expect_eq "server cert vs foreign CA" "$(tail -1 <<<"$r")" 000

# 8. hostile or wrong input
printf '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>' >"$T/dtd.xml"
r=$(post "$URL" "$T/dtd.xml")
expect_eq "DOCTYPE status" "$(tail -1 <<<"$r")" 500
expect_has "DOCTYPE fault" "$r" 'DOCTYPE refused'
printf 'not xml at all' >"$T/junk.xml"
r=$(post "$URL" "$T/junk.xml")
expect_has "junk fault" "$r" '<faultcode>soap:Client</faultcode>'
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' 'a' >"$T/big.xml"
r=$(post "$URL" "$T/big.xml")
expect_eq "oversized body" "$(tail -1 <<<"$r")" 413
r=$(ctl -X POST --data 'nonsense=1' -w '\n%{http_code}' "$CTL/config")
expect_eq "unknown config key" "$(tail -1 <<<"$r")" 400
r=$(ctl -X POST --data 'technical_rate=2' -w '\n%{http_code}' "$CTL/config")
expect_eq "rate out of range" "$(tail -1 <<<"$r")" 400
r=$(ctl -w '\n%{http_code}' "http://127.0.0.1:$C/clinicalprocess/x")
expect_eq "control listener serves /_sim/ only" "$(tail -1 <<<"$r")" 404

expect_has "callers" "$(ctl "$CTL/callers")" '"SE2321000016-7P3K":'
expect_has "logical addresses" "$(ctl "$CTL/logical-addresses")" '"2021005521":'

# 9. stats and reset
st=$(ctl "$CTL/stats")
expect_has "stats validation" "$st" '"validation":1'
expect_has "stats technical" "$st" '"technical":1'
expect_has "stats http_500" "$st" '"http_500":1'
expect_has "stats cuts" "$st" '"cuts":1'
expect_has "stats handshake failures" "$st" '"handshake_failures":'
grep -q '"handshake_failures":0' <<<"$st" && fail "handshake failures not counted: $st"
ctl -X POST "$CTL/reset" >/dev/null
expect_eq "reset" "$(ctl "$CTL/received")" '{}'
grep -q '"caller":"SE2321000016-7P3K"' "$T/sim.log" || fail "caller serialNumber not logged"
grep -q "191212121212\|192703104321" "$T/sim.log" && fail "a personnummer in the log"

# 10. keep-alive: several requests on one connection
r=$(curl -sS --max-time 10 "${TLS[@]}" -H 'Content-Type: text/xml' --data-binary @"$T/reg.xml" \
        "$URL" --next "${TLS[@]}" -H 'Content-Type: text/xml' --data-binary @"$T/reg.xml" "$URL" \
        --next "${TLS[@]}" "https://localhost:$P/_sim/stats" 2>&1)
expect_has "keep-alive" "$r" '"connections":1,'

# 11. SIGTERM: clean exit 0 (ASan would make it non-zero on a leak)
kill -TERM "$PID"
for _ in $(seq 1 100); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
done
if kill -0 "$PID" 2>/dev/null; then
        fail "fk-sim did not stop on SIGTERM"
else
        wait "$PID"
        expect_eq "exit status" "$?" 0
fi
PID=

if [ "$fails" -ne 0 ]; then
        echo "fksim.sh: $fails failure(s); fk-sim log:" >&2
        tail -40 "$T/sim.log" >&2
        exit 1
fi
echo "fksim.sh: ok"
