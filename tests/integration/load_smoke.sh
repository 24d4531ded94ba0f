#!/usr/bin/env bash
# load_smoke.sh - smoke test of the load generator (tests/load/), under 30 s:
#   1. its known-answer self-test passes, and its generated certificates pass the gateway's
#      own validation (strict);
#   2. ~3 s of load through the gateway to the FK simulator: every answer OK, and FK gets
#      every accepted certificate;
#   3. its answer checking bites: straight at the FK simulator set to reject everything, every
#      answer is counted as "error" and the exit status is 1.
# Usage: bash load_smoke.sh BIN_DIR. Everything it starts is stopped by the trap.
set -euo pipefail
BIN="${1:?usage: load_smoke.sh BIN_DIR}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
REG=/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21
for b in intygsgw fk-sim intygsgw-load; do
        [ -x "$BIN/$b" ] || { echo "missing $BIN/$b"; exit 1; }
done
W="$(mktemp -d /tmp/intygsgw-load-smoke.XXXXXX)"
PIDS=()
cleanup() {
        local p
        local i
        # Newest first: the gateway drains towards an FK simulator that is still up.
        for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
                p=${PIDS[i]}
                kill -TERM "$p" 2>/dev/null || true
                for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$p" 2>/dev/null || true
                wait "$p" 2>/dev/null || true
        done
        rm -rf "$W"
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*"
        for f in "$W"/*.log "$W"/*.txt; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
        exit 1
}
wait_file() {
        for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done
        fail "timed out waiting for $1"
}
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# 1. Known-answer checks (histogram, generator, answer classifier), and the generator's
#    documents are valid (both bare and in a SOAP envelope).
"$BIN/intygsgw-load" --self-test >"$W/self.txt" || fail "self-test"
grep -qx "self-test: ok" "$W/self.txt" || fail "self-test output"
"$BIN/intygsgw-load" --check 60 --seed 1 --schemas "$SRC/schemas" >"$W/check.txt" ||
        fail "generated documents do not validate"
grep -q "checked 60 generated documents: 60 valid, 0 not" "$W/check.txt" || fail "check output"

bash "$SRC/certs/make-pki.sh" "$W/pki" >/dev/null

"$BIN/fk-sim" --listen 127.0.0.1:0 --control 127.0.0.1:0 --cert "$W/pki/fk.crt" \
        --key "$W/pki/fk.key" --ca "$W/pki/ca.crt" --port-file "$W/fk.port" \
        --control-port-file "$W/fk.control" 2>"$W/fk-sim.log" &
PIDS+=($!)
wait_file "$W/fk.port"
wait_file "$W/fk.control"
FK_PORT=$(cat "$W/fk.port")
FK_CTL=$(cat "$W/fk.control")

cat >"$W/intygsgw.ini" <<EOF
[server]
listen = 127.0.0.1:0
tls_cert = $W/pki/gateway.crt
tls_key = $W/pki/gateway.key
tls_ca = $W/pki/ca.crt
tls_crl = $W/pki/crl.pem
workers = 2
[admin]
listen = 127.0.0.1:0
[validation]
schema_dir = $SRC/schemas
person_id_check = strict
[outbox]
path = $W/outbox.db
[forward]
url = https://127.0.0.1:$FK_PORT$REG
ca = $W/pki/ca.crt
client_cert = $W/pki/gateway-client.crt
client_key = $W/pki/gateway-client.key
[hsa]
ldif = $SRC/ops/hsa-extract.ldif
mapping = $SRC/ops/unit-mapping.csv
level = businessClassificationCode=1100,1102,1500
[auth]
grants = $SRC/ops/grants.ini
[log]
level = warn
EOF
"$BIN/intygsgw" serve -c "$W/intygsgw.ini" --port-file "$W/gw.ports" 2>"$W/intygsgw.log" &
PIDS+=($!)
wait_file "$W/gw.ports"
read -r GW_PORT _ <"$W/gw.ports"

# 2. ~3 s through the gateway: every answer OK, FK gets them all.
rc=0
"$BIN/intygsgw-load" --url "https://127.0.0.1:$GW_PORT$REG" --pki "$W/pki" --connections 6 \
        --duration 3 --seed 2 --timeout-ms 15000 --json "$W/gw.json" >"$W/gw.txt" 2>&1 || rc=$?
cat "$W/gw.txt"
[ "$rc" = 0 ] || fail "load through the gateway exited $rc"
sent=$(json "$W/gw.json" 'd["sent"]')
ok=$(json "$W/gw.json" 'd["ok"]')
[ "$sent" -gt 0 ] || fail "nothing sent"
[ "$ok" = "$sent" ] || fail "$ok of $sent OK"
[ "$(json "$W/gw.json" 'sum(d["errors"].values())')" = 0 ] || fail "errors counted"
[ "$(json "$W/gw.json" 'd["connected_at_start"]')" = 6 ] || fail "not every connection came up"
got=0
for _ in $(seq 1 150); do
        got=$(curl -s "http://127.0.0.1:$FK_CTL/_sim/stats" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["distinct_received"])')
        [ "$got" -ge "$ok" ] && break
        sleep 0.1
done
[ "$got" = "$ok" ] || fail "FK has $got of $ok accepted certificates"
echo "gateway: $ok of $sent OK, FK has $got"

# 3. Straight at FK told to reject everything: each answer is an ERROR, exit status 1.
curl -s -X POST --data 'reject_rate=1' "http://127.0.0.1:$FK_CTL/_sim/config" >/dev/null
rc=0
"$BIN/intygsgw-load" --url "https://127.0.0.1:$FK_PORT$REG" --pki "$W/pki" --connections 2 \
        --count 20 --seed 3 --json "$W/fk.json" >"$W/fk.txt" 2>&1 || rc=$?
cat "$W/fk.txt"
[ "$rc" = 1 ] || fail "load against a rejecting FK exited $rc, want 1"
[ "$(json "$W/fk.json" 'd["errors"]["error"]')" = 20 ] || fail "want 20 ERROR answers"
[ "$(json "$W/fk.json" 'd["ok"]')" = 0 ] || fail "want no OK answer"
echo "PASS"
