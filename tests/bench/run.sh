#!/usr/bin/env bash
# run.sh - intygsgw's end-to-end benchmark, all on loopback, on one machine:
#   builds in release mode, makes a test PKI, starts the FK simulator, the gateway and the load
#   generator (build/bin/intygsgw-load) and prints one table: certificates accepted per second
#   end to end (validated, tagged, fsync'd, delivered to FK), ack latency percentiles at a fixed
#   rate, delivery lag, the gateway's peak RSS and CPU per certificate, full-handshake
#   throughput; and, in the same run on the same payloads, two references with the ratios:
#   nginx as a mutual-TLS reverse proxy to the same FK simulator (TLS + HTTP only) and
#   xmllint --schema on the same documents (XSD validation only).
#
# Usage: tests/bench/run.sh [--quick] [--connections N] [--rate R] [--duration S]
#                           [--build-dir DIR] [--no-build] [--results FILE] [--keep]
#   --quick        ~25 s smoke run (100 connections, a few seconds a phase); no RESULTS.md
#   full run       1,000 connections, 30 s a phase; writes tests/bench/RESULTS.md
#   --rate R       the open-loop rate of the latency phases (default 2000/s full, 500 quick)
# Everything it starts is stopped on exit (trap); the temp dir is removed unless --keep.
set -euo pipefail
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
QUICK=0
BUILD="$SRC/build"
DO_BUILD=1
KEEP=0
CONNS="" RATE="" DUR="" RESULTS=""
while [ $# -gt 0 ]; do
        case "$1" in
        --quick) QUICK=1 ;;
        --connections) CONNS="$2"; shift ;;
        --rate) RATE="$2"; shift ;;
        --duration) DUR="$2"; shift ;;
        --build-dir) BUILD="$2"; shift ;;
        --no-build) DO_BUILD=0 ;;
        --results) RESULTS="$2"; shift ;;
        --keep) KEEP=1 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
        esac
        shift
done
if [ "$QUICK" = 1 ]; then
        CONNS=${CONNS:-100} RATE=${RATE:-500} DUR=${DUR:-2} HS_DUR=1 HS_CONNS=16 XML_N=500
        DRAIN_MAX=30
else
        CONNS=${CONNS:-1000} RATE=${RATE:-2000} DUR=${DUR:-30} HS_DUR=10 HS_CONNS=64 XML_N=5000
        DRAIN_MAX=300
        RESULTS=${RESULTS:-$SRC/tests/bench/RESULTS.md}
fi
SEED=20261123
REG=/clinicalprocess/healthcond/certificate/RegisterCertificate/3/rivtabp21
XSD="$SRC/schemas/interactions/RegisterCertificateInteraction/RegisterCertificateResponder_3.1.xsd"

# ---- build -------------------------------------------------------------------------------
. "$SRC/ops/deps.sh"
intygsgw_deps nginx-light libxml2-utils bc
if [ "$DO_BUILD" = 1 ]; then
        echo "== build (release) in $BUILD"
        cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DINTYGSGW_TESTS=OFF \
                -DINTYGSGW_SANITIZE=OFF >/dev/null
        cmake --build "$BUILD" -j"$(nproc)" --target intygsgw fk-sim intygsgw-load >/dev/null
fi
BIN="$BUILD/bin"
for b in intygsgw fk-sim intygsgw-load; do
        [ -x "$BIN/$b" ] || { echo "run.sh: $BIN/$b missing" >&2; exit 2; }
done

W="$(mktemp -d /tmp/intygsgw-bench.XXXXXX)"
chmod 711 "$W" # nginx workers (nobody) reach their temp dir below
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
        PIDS=()
        if [ "$KEEP" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() { # remove $1 from PIDS
        local keep=() p
        for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
        PIDS=("${keep[@]}")
}
stop_pid() { # stop_pid PID [wait-seconds]: TERM, wait, KILL
        local p=$1 n=$((${2:-15} * 10))
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 "$n"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
        forget_pid "$p"
}
wait_file() {
        for _ in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.05; done
        echo "run.sh: timed out waiting for $1" >&2
        return 1
}
free_port() {
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() { # utime+stime of a process and its live children, in clock ticks
        local t=0 p
        for p in "$@" $(pgrep -P "$1" 2>/dev/null || true); do
                [ -r "/proc/$p/stat" ] || continue
                t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat")))
        done
        echo "$t"
}
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("v=d"+sys.argv[2]); print(v)' "$@"; }

echo "== test PKI, documents"
bash "$SRC/certs/make-pki.sh" "$W/pki" >/dev/null
"$BIN/intygsgw-load" --check 300 --seed "$SEED" >"$W/check.txt" ||
        { cat "$W/check.txt"; echo "run.sh: generated documents do not validate" >&2; exit 1; }

# ---- FK simulator -------------------------------------------------------------------------
"$BIN/fk-sim" --listen 127.0.0.1:0 --control 127.0.0.1:0 --cert "$W/pki/fk.crt" \
        --key "$W/pki/fk.key" --ca "$W/pki/ca.crt" --port-file "$W/fk.port" \
        --control-port-file "$W/fk.control" --max-conns 4096 --log-level warn 2>"$W/fk-sim.log" &
FK_PID=$!
PIDS+=("$FK_PID")
wait_file "$W/fk.port"
wait_file "$W/fk.control"
FK_PORT=$(cat "$W/fk.port")
FK_CTL=$(cat "$W/fk.control")
fk_reset() { curl -s -X POST "http://127.0.0.1:$FK_CTL/_sim/reset" >/dev/null; }
# No python here: this is polled while the gateway drains and must not take its CPU.
fk_received() {
        curl -s "http://127.0.0.1:$FK_CTL/_sim/stats" |
                sed -n 's/.*"distinct_received":\([0-9]*\).*/\1/p'
}

# ---- gateway ------------------------------------------------------------------------------
GW_PID="" GW_PORT="" ADMIN_PORT=""
start_gw() {
        local d="$W/gw-$1"
        mkdir -p "$d"
        cat >"$d/intygsgw.ini" <<EOF
[server]
listen = 127.0.0.1:0
tls_cert = $W/pki/gateway.crt
tls_key = $W/pki/gateway.key
tls_ca = $W/pki/ca.crt
tls_crl = $W/pki/crl.pem
workers = 2
max_connections = $((CONNS * 2 + 100))
max_connections_per_caller = $((CONNS + 100))
[admin]
listen = 127.0.0.1:0
[validation]
schema_dir = $SRC/schemas
person_id_check = strict
[outbox]
path = $d/outbox.db
batch_max = 512
[forward]
url = https://127.0.0.1:$FK_PORT$REG
ca = $W/pki/ca.crt
client_cert = $W/pki/gateway-client.crt
client_key = $W/pki/gateway-client.key
concurrency = 32
[hsa]
ldif = $SRC/ops/hsa-extract.ldif
mapping = $SRC/ops/unit-mapping.csv
level = businessClassificationCode=1100,1102,1500
[auth]
grants = $SRC/ops/grants.ini
[log]
level = warn
EOF
        "$BIN/intygsgw" serve -c "$d/intygsgw.ini" --port-file "$d/ports" 2>"$d/intygsgw.log" &
        GW_PID=$!
        PIDS+=("$GW_PID")
        wait_file "$d/ports"
        read -r GW_PORT ADMIN_PORT <"$d/ports"
}
gw_metric() { # gw_metric NAME-REGEX -> value of the first matching sample
        curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v re="^$1 " '$0 ~ re && !done {print $2; done = 1}'
}

# ---- nginx --------------------------------------------------------------------------------
NGX_PID="" NGX_PORT=""
start_nginx() {
        local d="$W/nginx"
        mkdir -p "$d/tmp"
        chmod 755 "$d" "$d/tmp"
        NGX_PORT=$(free_port)
        sed -e "s|@DIR@|$d|g" -e "s|@PKI@|$W/pki|g" -e "s|@PORT@|$NGX_PORT|g" \
                -e "s|@FK_PORT@|$FK_PORT|g" -e "s|@WORKERS@|$(nproc)|g" \
                "$SRC/tests/bench/nginx.conf.in" >"$d/nginx.conf"
        nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" &
        NGX_PID=$!
        PIDS+=("$NGX_PID")
        for _ in $(seq 1 100); do
                (exec 3<>"/dev/tcp/127.0.0.1/$NGX_PORT") 2>/dev/null && return 0
                sleep 0.05
        done
        echo "run.sh: nginx did not start:" >&2
        cat "$d/error.log" >&2
        return 1
}

# ---- one phase: run the load, wait for delivery, collect ---------------------------------
# phase NAME TARGET(gw|nginx) LOAD-ARGS... ; writes $W/NAME.env with shell variables
phase() {
        local name=$1 target=$2
        shift 2
        local port pid
        if [ "$target" = gw ]; then port=$GW_PORT pid=$GW_PID; else port=$NGX_PORT pid=$NGX_PID; fi
        fk_reset
        local c0 f0
        c0=$(cpu_ticks "$pid")
        f0=$(cpu_ticks "$FK_PID")
        local rc=0
        "$BIN/intygsgw-load" --url "https://127.0.0.1:$port$REG" --pki "$W/pki" --seed "$SEED" \
                --id-prefix "${name//_/-}-$$" --timeout-ms 30000 --json "$W/$name.json" "$@" \
                >"$W/$name.txt" 2>"$W/$name.err" || rc=$?
        if [ "$rc" -ge 2 ] || [ ! -s "$W/$name.json" ]; then
                echo "run.sh: load phase $name failed (exit $rc)" >&2
                cat "$W/$name.txt" "$W/$name.err" >&2
                exit 1
        fi
        sed 's/^/   /' "$W/$name.txt"
        local ok
        ok=$(jget "$W/$name.json" '["ok"]')
        # Wait until FK has every accepted certificate.
        local got
        got=$(fk_received)
        local deadline
        deadline=$(echo "$(now) + $DRAIN_MAX" | bc)
        # The rate and lag come from FK's own clock (below), so a coarse poll loses nothing.
        while [ "$got" -lt "$ok" ] && [ "$(echo "$(now) < $deadline" | bc)" = 1 ]; do
                sleep 0.5
                got=$(fk_received)
        done
        local fk_last w_start w_last_ok
        fk_last=$(curl -s "http://127.0.0.1:$FK_CTL/_sim/stats" |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["last_new_ms"] / 1000)')
        w_start=$(jget "$W/$name.json" '["start_wall_s"]')
        w_last_ok=$(jget "$W/$name.json" '["last_ok_wall_s"]')
        local c1 f1 rss=0
        c1=$(cpu_ticks "$pid")
        f1=$(cpu_ticks "$FK_PID")
        if [ "$target" = gw ]; then
                rss=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
        else
                for p in $(pgrep -P "$pid"); do
                        rss=$((rss + $(awk '/^VmHWM/ {print $2}' "/proc/$p/status")))
                done
        fi
        {
                echo "ok=$ok"
                echo "delivered=$got"
                echo "rc=$rc"
                # Rates and lag from the clocks of the load generator (start, last OK answer)
                # and of the FK simulator (last new certificate), not from this script's polling.
                echo "e2e=$(echo "$got / ($fk_last - $w_start)" | bc -l)"
                echo "lag=$(echo "$fk_last - $w_last_ok" | bc -l)"
                echo "cpu_us=$(echo "($c1 - $c0) * 1000000 / $HZ / ($got + ($got == 0))" | bc -l)"
                echo "fk_cpu_us=$(echo "($f1 - $f0) * 1000000 / $HZ / ($got + ($got == 0))" | bc -l)"
                echo "rss_mb=$(echo "$rss / 1024" | bc -l)"
                echo "tput=$(jget "$W/$name.json" '["throughput"]')"
                for q in p50 p90 p99 p999 max; do
                        echo "$q=$(jget "$W/$name.json" "[\"latency_ms\"][\"$q\"]")"
                done
                echo "load_cpu_us=$(jget "$W/$name.json" \
                        '["cpu_user_s"]*0+(d["cpu_user_s"]+d["cpu_sys_s"])*1e6/max(1,d["sent"])')"
                echo "not_ok=$(jget "$W/$name.json" '["sent"]-d["ok"]')"
                echo "loadavg=$(cut -d' ' -f1 /proc/loadavg)"
        } >"$W/$name.env"
        if [ "$got" -lt "$ok" ]; then
                echo "   WARNING: FK has $got of $ok accepted certificates after ${DRAIN_MAX}s"
        else
                echo "   FK has all $ok"
        fi
        if [ "$target" = gw ]; then
                local puts commits vs vn
                puts=$(gw_metric intygsgw_outbox_puts_total)
                commits=$(gw_metric intygsgw_outbox_fsyncs_total)
                vs=$(gw_metric intygsgw_validation_seconds_sum)
                vn=$(gw_metric intygsgw_validation_seconds_count)
                printf '   gateway: %.0f intyg per fsync (group commit), validation %.0f us mean\n' \
                        "$(echo "$puts / ($commits + ($commits == 0))" | bc -l)" \
                        "$(echo "$vs * 1000000 / ($vn + ($vn == 0))" | bc -l)"
                curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$W/$name.metrics"
        fi
}
val() { (. "$W/$1.env"; eval "echo \$$2"); }
# Between phases: drop the stopped gateway's outbox and let the kernel write back what it
# still holds, so that one phase's dirty pages (a capacity run leaves about a gigabyte) are
# not flushed during the next phase's measurement.
settle() {
        rm -rf "$1/outbox.db" "$1/outbox.db-wal" "$1/outbox.db-shm"
        sync
}

MACHINE="$(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2; exit}'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB RAM, $(uname -sr); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
VERSIONS="$(openssl version | cut -d' ' -f1-2), libxml2 $(xmllint --version 2>&1 | head -1 | awk '{print $NF}'), $(nginx -v 2>&1 | sed 's/.*: //'), libuv $(pkg-config --modversion libuv), SQLite $(pkg-config --modversion sqlite3)"
echo "== machine: $MACHINE"

# ---- gateway phases -----------------------------------------------------------------------
echo "== intygsgw: capacity (closed loop, $CONNS connections, ${DUR}s)"
start_gw cap
phase gw_cap gw --connections "$CONNS" --duration "$DUR"
stop_pid "$GW_PID" 30
settle "$W/gw-cap"

echo "== intygsgw: latency at $RATE/s (open loop, $CONNS connections, ${DUR}s)"
start_gw rate
phase gw_rate gw --connections "$CONNS" --rate "$RATE" --duration "$DUR"
stop_pid "$GW_PID" 30
settle "$W/gw-rate"

echo "== intygsgw: full handshakes (a new connection per certificate, $HS_CONNS parallel, ${HS_DUR}s)"
start_gw hs
phase gw_hs gw --new-conn --connections "$HS_CONNS" --duration "$HS_DUR"
stop_pid "$GW_PID" 30
settle "$W/gw-hs"

# ---- nginx phases -------------------------------------------------------------------------
echo "== nginx mutual-TLS reverse proxy to the same FK simulator"
start_nginx
echo "== nginx: capacity (closed loop, $CONNS connections, ${DUR}s)"
phase ngx_cap nginx --connections "$CONNS" --duration "$DUR"
if [ "$QUICK" = 0 ]; then
        echo "== nginx: latency at $RATE/s (open loop, $CONNS connections, ${DUR}s)"
        phase ngx_rate nginx --connections "$CONNS" --rate "$RATE" --duration "$DUR"
fi
echo "== nginx: full handshakes ($HS_CONNS parallel, ${HS_DUR}s)"
phase ngx_hs nginx --new-conn --connections "$HS_CONNS" --duration "$HS_DUR"
stop_pid "$NGX_PID" 10

# ---- xmllint ------------------------------------------------------------------------------
echo "== xmllint --schema on $XML_N of the same documents (bare), one process"
"$BIN/intygsgw-load" --write-docs "$W/docs" --count "$XML_N" --seed "$SEED" \
        --id-prefix "gw-cap-$$" >/dev/null
TIMEFORMAT='%R %U %S'
XT=$( { time (cd "$W/docs" && xmllint --noout --nonet --schema "$XSD" ./*.xml \
        2>"$W/xmllint.err" >/dev/null); } 2>&1 ) || true
XVALID=$(grep -c ' validates$' "$W/xmllint.err" || true)
read -r XREAL XUSER XSYS <<<"$XT"
XRATE=$(echo "$XML_N / $XREAL" | bc -l)
XCPU=$(echo "($XUSER + $XSYS) * 1000000 / $XML_N" | bc -l)
echo "   $XVALID of $XML_N valid in ${XREAL}s: $(printf '%.0f' "$XRATE") docs/s, $(printf '%.0f' "$XCPU") us CPU per doc"
[ "$XVALID" -eq "$XML_N" ] || echo "   WARNING: xmllint did not validate every document"

# ---- the table ----------------------------------------------------------------------------
f0() { printf '%.0f' "$1"; }
f1() { printf '%.1f' "$1"; }
f2() { printf '%.2f' "$1"; }
ratio() { printf '%.2f' "$(echo "$1 / ($2 + ($2 == 0))" | bc -l)"; }
NGX_RATE_ENV=ngx_rate
[ "$QUICK" = 1 ] && NGX_RATE_ENV=ngx_cap
TABLE="$W/table.md"
{
        echo "| measure | intygsgw | nginx mTLS proxy | ratio intygsgw/nginx |"
        echo "|---|---:|---:|---:|"
        echo "| capacity: acks/s, closed loop, $CONNS connections | $(f0 "$(val gw_cap tput)") | $(f0 "$(val ngx_cap tput)") | $(ratio "$(val gw_cap tput)" "$(val ngx_cap tput)") |"
        echo "| **end to end: certificates/s delivered to FK** (validated, tagged, fsync'd, forwarded), same run | **$(f0 "$(val gw_cap e2e)")** | $(f0 "$(val ngx_cap e2e)") | $(ratio "$(val gw_cap e2e)" "$(val ngx_cap e2e)") |"
        echo "| delivery lag after the last ack, capacity run (s) | $(f2 "$(val gw_cap lag)") | $(f2 "$(val ngx_cap lag)") (synchronous) | |"
        echo "| ack latency at capacity p50 / p99 (ms) | $(f1 "$(val gw_cap p50)") / $(f1 "$(val gw_cap p99)") | $(f1 "$(val ngx_cap p50)") / $(f1 "$(val ngx_cap p99)") | |"
        if [ "$QUICK" = 0 ]; then
                echo "| open loop at $RATE/s: achieved acks/s | $(f0 "$(val gw_rate tput)") | $(f0 "$(val ngx_rate tput)") | |"
                echo "| ack latency at $RATE/s p50 / p90 / p99 / p99.9 / max (ms) | $(f1 "$(val gw_rate p50)") / $(f1 "$(val gw_rate p90)") / **$(f1 "$(val gw_rate p99)")** / $(f1 "$(val gw_rate p999)") / $(f1 "$(val gw_rate max)") | $(f1 "$(val ngx_rate p50)") / $(f1 "$(val ngx_rate p90)") / $(f1 "$(val ngx_rate p99)") / $(f1 "$(val ngx_rate p999)") / $(f1 "$(val ngx_rate max)") | p99 $(ratio "$(val gw_rate p99)" "$(val ngx_rate p99)") |"
        else
                echo "| open loop at $RATE/s: achieved acks/s | $(f0 "$(val gw_rate tput)") | – | |"
                echo "| ack latency at $RATE/s p50 / p90 / p99 / p99.9 / max (ms) | $(f1 "$(val gw_rate p50)") / $(f1 "$(val gw_rate p90)") / **$(f1 "$(val gw_rate p99)")** / $(f1 "$(val gw_rate p999)") / $(f1 "$(val gw_rate max)") | – | |"
        fi
        echo "| end to end at $RATE/s: delivered/s; delivery lag (s) | $(f0 "$(val gw_rate e2e)"); $(f2 "$(val gw_rate lag)") | | |"
        echo "| peak RSS, $CONNS connections (MB) | $(f1 "$(val gw_cap rss_mb)") | $(f1 "$(val ngx_cap rss_mb)") (workers) | $(ratio "$(val gw_cap rss_mb)" "$(val ngx_cap rss_mb)") |"
        echo "| CPU per certificate, capacity run (us) | $(f0 "$(val gw_cap cpu_us)") | $(f0 "$(val ngx_cap cpu_us)") | $(ratio "$(val gw_cap cpu_us)" "$(val ngx_cap cpu_us)") |"
        echo "| CPU per certificate at $RATE/s (us) | $(f0 "$(val gw_rate cpu_us)") | $(f0 "$(val $NGX_RATE_ENV cpu_us)") | $(ratio "$(val gw_rate cpu_us)" "$(val $NGX_RATE_ENV cpu_us)") |"
        echo "| full handshakes/s (new connection per certificate, $HS_CONNS parallel) | $(f0 "$(val gw_hs tput)") | $(f0 "$(val ngx_hs tput)") | $(ratio "$(val gw_hs tput)" "$(val ngx_hs tput)") |"
        echo "| sharing the machine: FK simulator / load generator CPU per certificate (us) | $(f0 "$(val gw_cap fk_cpu_us)") / $(f0 "$(val gw_cap load_cpu_us)") | $(f0 "$(val ngx_cap fk_cpu_us)") / $(f0 "$(val ngx_cap load_cpu_us)") | |"
        echo "| machine load average (1 min, other sessions included) after the capacity / rate runs | $(val gw_cap loadavg) / $(val gw_rate loadavg) | $(val ngx_cap loadavg) / $(val $NGX_RATE_ENV loadavg) | |"
        echo "| requests not answered OK (capacity / rate / handshake runs) | $(val gw_cap not_ok) / $(val gw_rate not_ok) / $(val gw_hs not_ok) | $(val ngx_cap not_ok) / $( [ "$QUICK" = 0 ] && val ngx_rate not_ok || echo –) / $(val ngx_hs not_ok) | |"
        echo
        echo "| reference: validation alone | docs/s | CPU per doc (us) | ratio intygsgw end to end / xmllint |"
        echo "|---|---:|---:|---:|"
        echo "| xmllint --schema, $XML_N of the same documents, one process | $(f0 "$XRATE") | $(f0 "$XCPU") | rate $(ratio "$(val gw_cap e2e)" "$XRATE"), CPU $(ratio "$(val gw_cap cpu_us)" "$XCPU") |"
} >"$TABLE"
echo
echo "== results"
cat "$TABLE"
FAIL=0
for p in gw_cap gw_rate gw_hs; do
        [ "$(val $p not_ok)" = 0 ] || { echo "run.sh: $p had requests not answered OK" >&2; FAIL=1; }
        [ "$(val $p delivered)" -ge "$(val $p ok)" ] ||
                { echo "run.sh: $p: FK lacks accepted certificates" >&2; FAIL=1; }
done

if [ -n "$RESULTS" ]; then
        # The hand-written analysis (from the line "## Analysis" on) survives a new run.
        ANALYSIS=""
        if [ -f "$RESULTS" ] && grep -q '^## Analysis' "$RESULTS"; then
                ANALYSIS="$(sed -n '/^## Analysis/,$p' "$RESULTS")"
        fi
        {
                echo "# intygsgw benchmark results"
                echo
                echo "Made by \`tests/bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') (commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?'))."
                echo
                echo "- Machine: $MACHINE"
                echo "- Software: $VERSIONS"
                echo "- Everything on loopback on this one machine: the FK simulator, the gateway (or nginx) and the load generator share its cores."
                echo "- Gateway: release build, workers=2, outbox batch_max=512 (SQLite WAL, synchronous=FULL), forward concurrency=32, log level warn, person_id_check strict, statistics off."
                echo "- Load: \`intygsgw-load\`, $CONNS mutual-TLS keep-alive connections spread over the three regions' client certificates, certificates from tests/data/templates/lisjp-v1.xml.in (unique ids, varied patients, units, diagnoses, periods; seed $SEED), ${DUR}s a phase; every answer checked (RegisterCertificateResponse, resultCode OK)."
                echo "- Latency is measured from the intended send time (open loop: no coordinated omission). End to end = certificates FK has received / (time from the load's first request until FK had the last one). Delivery lag = from the last ack until FK had every certificate."
                echo "- nginx: $(nproc) workers, TLS 1.3, ssl_verify_client on (same CA and CRL), proxy_pass over mutual TLS with keep-alive upstream to the same FK simulator. Its answers are FK's, so its ack is its delivery."
                echo
                cat "$TABLE"
                if [ -n "$ANALYSIS" ]; then
                        echo
                        echo "$ANALYSIS"
                fi
        } >"$RESULTS.tmp"
        mv "$RESULTS.tmp" "$RESULTS"
        echo "wrote $RESULTS"
fi
exit "$FAIL"
