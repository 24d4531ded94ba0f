#!/usr/bin/env bash
# intygsgw demo on embedded defaults, all on loopback:
#   installs what is missing, builds, makes a test PKI, starts the FK simulator and the
#   gateway, sends FK7804 certificates from three regions' systems over mutual TLS (valid,
#   invalid, unauthorised, duplicate, a revocation), waits until FK has them, and shows what
#   happened: answers, FK's record, the gateway's status, metrics, tags and statistics.
#   Everything it starts is stopped at the end. Output and logs: out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ops/deps.sh
intygsgw_deps

echo "== build (release) in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DINTYGSGW_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BIN=$ROOT/build/bin

D=$ROOT/out/demo
rm -rf "$D"
mkdir -p "$D"
echo "== test PKI in $D/pki"
certs/make-pki.sh "$D/pki"
head -c 48 /dev/urandom >"$D/pseudonym.key"
chmod 600 "$D/pseudonym.key"

PIDS=()
cleanup() {
        for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do
                for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$p" 2>/dev/null || true
        done
}
trap cleanup EXIT

wait_file() {
        for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done
        echo "timed out waiting for $1" >&2
        return 1
}

echo "== FK simulator"
"$BIN/fk-sim" --listen 127.0.0.1:0 --control 127.0.0.1:0 --cert "$D/pki/fk.crt" \
        --key "$D/pki/fk.key" --ca "$D/pki/ca.crt" --port-file "$D/fk.port" \
        --control-port-file "$D/fk.control" 2>"$D/fk-sim.log" &
PIDS+=($!)
wait_file "$D/fk.port"
wait_file "$D/fk.control"
FK_PORT=$(cat "$D/fk.port")
FK_CTL=$(cat "$D/fk.control")
echo "   FK simulator on 127.0.0.1:$FK_PORT (control 127.0.0.1:$FK_CTL)"

cat >"$D/intygsgw.ini" <<EOF
[server]
listen = 127.0.0.1:0
tls_cert = pki/gateway.crt
tls_key = pki/gateway.key
tls_ca = pki/ca.crt
tls_crl = pki/crl.pem
workers = 2
[admin]
listen = 127.0.0.1:0
dashboard_dir = $ROOT/build/dashboard
[validation]
schema_dir = $ROOT/schemas
person_id_check = strict
[outbox]
path = outbox.db
[forward]
url = https://127.0.0.1:$FK_PORT/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21
ca = pki/ca.crt
client_cert = pki/gateway-client.crt
client_key = pki/gateway-client.key
retry_base_ms = 200
[hsa]
ldif = $ROOT/ops/hsa-extract.ldif
mapping = $ROOT/ops/unit-mapping.csv
level = businessClassificationCode=1100,1102,1500
[auth]
grants = $ROOT/ops/grants.ini
[stats]
path = stats.db
pseudonym_key = pseudonym.key
EOF
echo "== configuration check"
"$BIN/intygsgw" check-config -c "$D/intygsgw.ini"

echo "== gateway"
"$BIN/intygsgw" serve -c "$D/intygsgw.ini" --port-file "$D/gw.ports" 2>"$D/intygsgw.log" &
PIDS+=($!)
wait_file "$D/gw.ports"
read -r GW_PORT ADMIN_PORT <"$D/gw.ports"
echo "   mutual-TLS listener 127.0.0.1:$GW_PORT, admin http://127.0.0.1:$ADMIN_PORT/"

REG=/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21
REV=/clinicalprocess/healthcond/certificate/RevokeCertificate/2/rivtabp21
TEMPLATE=$ROOT/tests/data/templates/lisjp-v1.xml.in

# make_intyg ID PERSON UNIT PROVIDER START END DIAG > file (a SOAP envelope)
make_intyg() {
        echo '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:itr="urn:riv:itintegration:registry:1"><soapenv:Header><itr:LogicalAddress>SE2321000016-GW01</itr:LogicalAddress></soapenv:Header><soapenv:Body>'
        sed -e '1d' -e "s/@ID@/$1/g" -e "s/@PERSON@/$2/g" -e "s/@UNIT@/$3/g" \
                -e "s/@PROVIDER@/$4/g" -e "s/@SIGNED@/$5/g" -e "s/@START@/$5/g" \
                -e "s/@END@/$6/g" -e "s/@DIAG@/$7/g" "$TEMPLATE"
        echo '</soapenv:Body></soapenv:Envelope>'
}

# post REGION FILE [PATH] -> prints HTTP status and the resultCode / faultstring
post() {
        local who=$1 file=$2 path=${3:-$REG}
        curl -s -o "$D/answer.xml" -w '%{http_code}' --cacert "$D/pki/ca.crt" \
                --cert "$D/pki/$who.crt" --key "$D/pki/$who.key" \
                -H 'Content-Type: text/xml; charset=UTF-8' --data-binary "@$file" \
                "https://127.0.0.1:$GW_PORT$path"
}

summarise() {
        python3 - "$D/answer.xml" <<'PY'
import re, sys
t = open(sys.argv[1], encoding="utf-8").read()
code = re.search(r"<[^>]*resultCode>([^<]*)<", t)
text = re.search(r"<[^>]*resultText>([^<]*)<", t)
fault = re.search(r"<faultstring>([^<]*)<", t)
if fault:
    import html
    print("SOAP Fault:", html.unescape(fault.group(1))[:300])
else:
    import html
print((code.group(1) if code else "?") + ((": " + html.unescape(text.group(1))[:400]) if text else ""))
PY
}

echo
echo "== sending certificates from three regions"
PNR=(197503142387 198211024578 199006231162 196801303824 195909097718 200112249024
        198704053449 199508175537 197202282161 196410106808 199907014253 198005190973)
declare -a SENT=()
n=0
send_ok() {
        local who=$1 unit=$2 provider=$3 start=$4 end=$5 diag=$6
        local id
        id=$(printf 'demo-%04d-%s' "$n" "$(date +%s)")
        make_intyg "$id" "${PNR[$((n % ${#PNR[@]}))]}" "$unit" "$provider" "$start" "$end" \
                "$diag" >"$D/intyg-$n.xml"
        local st
        st=$(post "$who" "$D/intyg-$n.xml")
        printf '   %-9s unit %-18s %s  HTTP %s  ' "$who" "$unit" "$id" "$st"
        summarise
        SENT+=("$id")
        n=$((n + 1))
}
send_ok region-a SE2321000016-A111 SE2321000016-0001 2026-10-01 2026-10-20 S47   # ward: level
send_ok region-a SE2321000016-A130 SE2321000016-0001 2026-10-05 2026-11-02 F321  # mapping
send_ok region-a SE2321000016-A140 SE2321000016-0001 2026-09-14 2026-09-30 M54   # coarser
send_ok region-a SE2321000016-A910 SE2321000016-0001 2026-09-01 2026-09-20 J06   # unresolved
send_ok region-b SE2321000131-B111 SE2321000131-0001 2026-10-10 2026-10-31 J06   # level
send_ok region-b SE2321000131-B310 SE2321000131-0001 2026-08-01 2026-11-15 F438  # coarser
send_ok region-c SE2321000032-C111 SE2321000032-0001 2026-10-12 2026-10-26 S82   # level
send_ok region-c SE2321000032-C230 SE2321000032-0001 2026-07-01 2026-10-30 M51   # mapping

echo
echo "== the same certificate again (idempotent: INFO, stored and sent once)"
st=$(post region-a "$D/intyg-0.xml"); printf '   HTTP %s  ' "$st"; summarise

echo
echo "== an invalid certificate (upstream sample fail-diagnosSaknas.xml)"
{ echo '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
  sed '1d' tests/data/lisjp-v1/fail-diagnosSaknas.xml
  echo '</soapenv:Body></soapenv:Envelope>'; } >"$D/invalid.xml"
st=$(post region-a "$D/invalid.xml"); printf '   HTTP %s  ' "$st"; summarise

echo
echo "== region A's system submitting for region B's care provider (refused)"
make_intyg "demo-foreign-$(date +%s)" 197503142387 SE2321000131-B111 SE2321000131-0001 \
        2026-10-01 2026-10-10 S47 >"$D/foreign.xml"
st=$(post region-a "$D/foreign.xml"); printf '   HTTP %s  ' "$st"; summarise

echo
echo "== a client with a revoked certificate (refused in the TLS handshake)"
if curl -s -o /dev/null --cacert "$D/pki/ca.crt" --cert "$D/pki/revoked.crt" \
        --key "$D/pki/revoked.key" -H 'Content-Type: text/xml' --data-binary "@$D/intyg-0.xml" \
        "https://127.0.0.1:$GW_PORT$REG"; then
        echo "   UNEXPECTED: accepted"
else
        echo "   refused: $(grep -o '"reason":"cert_revoked"' "$D/intygsgw.log" | head -1)"
fi

echo
echo "== a revocation of the first certificate (RevokeCertificate v2; sent after it)"
python3 - "$ROOT/tests/data/lisjp-v1/revokerequest.xml" "${SENT[0]}" "${PNR[0]}" \
        SE2321000016-A111 SE2321000016-0001 >"$D/revoke.xml" <<'PY'
import sys
src, intyg, person, unit, provider = sys.argv[1:]
t = open(src, encoding="utf-8").read().split("?>", 1)[1]
t = t.replace("<ns2:extension>intygId</ns2:extension>", "<ns2:extension>%s</ns2:extension>" % intyg)
t = t.replace("<ns2:extension>191212121212</ns2:extension>", "<ns2:extension>%s</ns2:extension>" % person)
t = t.replace("<ns2:root>hsaId</ns2:root>", "<ns2:root>%s</ns2:root>" % unit)
parts = t.split("<ns2:extension>hsaId</ns2:extension>")  # author, unit, care provider
t = parts[0] + "<ns2:extension>SE2321000016-L001</ns2:extension>" + parts[1] + \
    "<ns2:extension>%s</ns2:extension>" % unit + parts[2] + \
    "<ns2:extension>%s</ns2:extension>" % provider + parts[3]
print('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
      'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>' + t +
      '</soapenv:Body></soapenv:Envelope>')
PY
st=$(post region-a "$D/revoke.xml" "$REV"); printf '   HTTP %s  ' "$st"; summarise

echo
echo "== waiting until FK has every accepted certificate"
want=${#SENT[@]}
for _ in $(seq 1 150); do
        got=$(curl -s "http://127.0.0.1:$FK_CTL/_sim/received" | python3 -c \
                'import json,sys; print(len(json.load(sys.stdin)))')
        [ "$got" -ge "$want" ] && break
        sleep 0.1
done
echo "   FK received $got of $want: $(curl -s "http://127.0.0.1:$FK_CTL/_sim/received")"
for _ in $(seq 1 50); do
        rv=$(curl -s "http://127.0.0.1:$FK_CTL/_sim/revoked")
        [ "$rv" != "{}" ] && break
        sleep 0.1
done
echo "   FK revoked: $rv"

echo
echo "== gateway status (intygsgw status)"
"$BIN/intygsgw" status --admin "127.0.0.1:$ADMIN_PORT"

echo
echo "== how units were tagged (intygsgw hsa lookup)"
for u in SE2321000016-A111 SE2321000016-A130 SE2321000016-A140 SE2321000016-A910; do
        "$BIN/intygsgw" hsa lookup -c "$D/intygsgw.ini" "$u" |
                grep -E '^(unit|follow-up|resolution) ' | sed 's/^/   /'
        echo
done

echo
echo "== one certificate's history (intygsgw show)"
"$BIN/intygsgw" show --admin "127.0.0.1:$ADMIN_PORT" "${SENT[0]}" | sed 's/^/   /'

echo
echo "== selected metrics"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
        grep -E '^intygsgw_(intyg_total|rejections_total|forward_attempts_total|tls_handshake_failures_total\{reason="cert_revoked"|outbox_records)' |
        sed 's/^/   /'

echo
echo "== follow-up statistics (no personnummer stored: HMAC pseudonyms; cells below the"
echo "   cut-off of 5 are shown as suppressed, never as 0)"
sleep 0.5
for r in sjukfall lan vardenhet; do
        "$BIN/intygsgw" stats report -c "$D/intygsgw.ini" --report "$r" --level country \
                --from 2026-07 --to 2026-11 --as-of 2026-11-23 | sed 's/^/   /'
        echo
done
echo "   (a region's own view, no cut-off inside its own care provider:)"
"$BIN/intygsgw" stats report -c "$D/intygsgw.ini" --report sjukfall --level provider \
        --id SE2321000016-0001 --viewer SE2321000016-0001 --from 2026-07 --to 2026-11 \
        --as-of 2026-11-23 | sed 's/^/   /'

echo
echo "== dashboard: http://127.0.0.1:$ADMIN_PORT/  (while the demo runs)"
echo "== stopping (SIGTERM: drain, then exit)"
cleanup
trap - EXIT
echo "   logs: $D/intygsgw.log, $D/fk-sim.log"
echo "demo done"
