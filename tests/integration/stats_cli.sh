#!/usr/bin/env bash
# stats_cli.sh - `intygsgw stats ingest` and `stats report` end to end: stored, duplicate,
# conflict, revoked, invalid; a revocation changing a report; --as-of reproducible (a later
# certificate joining two cases and a later revocation leave an earlier day's report
# byte-identical); JSON, CSV, --list, exit codes.
# Usage: bash stats_cli.sh BIN_DIR
set -u
BIN="${1:?usage: stats_cli.sh BIN_DIR}/intygsgw"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
V1="$SRC/tests/data/lisjp-v1"
T="$(mktemp -d /tmp/stats_cli.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail=0
check() { # name expected actual
        if [ "$2" != "$3" ]; then
                echo "FAIL: $1: expected [$2], got [$3]"
                fail=1
        else
                echo "ok: $1"
        fi
}
head -c 48 /dev/urandom >"$T/key" && chmod 600 "$T/key"
cat >"$T/gw.ini" <<INI
[server]
tls_cert = c.pem
tls_key = k.pem
tls_ca = ca.pem
[forward]
enabled = false
[validation]
schema_dir = $SRC/schemas
person_id_check = warn
[stats]
path = $T/stats.db
pseudonym_key = $T/key
INI
# Two certificates of one patient, December and January (17 free days: two cases).
sed 's#<ns3:extension>1234567</ns3:extension>#<ns3:extension>a1</ns3:extension>#' \
        "$V1/lisjp.xml" >"$T/a1.xml"
sed 's#<ns3:extension>1234567</ns3:extension>#<ns3:extension>b1</ns3:extension>#; s/2015-12-/2016-01-/g' \
        "$V1/lisjp.xml" >"$T/b1.xml"
sed 's#<ns2:extension>intygId</ns2:extension>#<ns2:extension>b1</ns2:extension>#' \
        "$V1/revokerequest.xml" >"$T/revoke-b1.xml"
sed 's#<ns3:extension>1234567</ns3:extension>#<ns3:extension>a1</ns3:extension>#; s/2015-12-20/2015-12-31/' \
        "$V1/lisjp.xml" >"$T/a1-changed.xml"
# Signed 2016-01-20, covering 2015-12-21..2016-01-06: joins a1's and b1's cases into one.
sed 's#<ns3:extension>1234567</ns3:extension>#<ns3:extension>j1</ns3:extension>#
     s#<signeringstidpunkt>2015-12-07T15:48:05#<signeringstidpunkt>2016-01-20T10:00:00#
     s#<ns3:start>2015-12-07#<ns3:start>2015-12-21#; s#<ns3:end>2015-12-10#<ns3:end>2015-12-24#
     s#<ns3:start>2015-12-12#<ns3:start>2015-12-25#; s#<ns3:end>2015-12-14#<ns3:end>2015-12-28#
     s#<ns3:start>2015-12-15#<ns3:start>2015-12-29#; s#<ns3:end>2015-12-20#<ns3:end>2016-01-06#' \
        "$V1/lisjp.xml" >"$T/j1.xml"

out=$("$BIN" stats ingest -c "$T/gw.ini" "$T/a1.xml" "$T/b1.xml" "$T/a1.xml" 2>&1)
check "ingest exit" 0 $?
check "ingest verdicts" "$T/a1.xml: stored
$T/b1.xml: stored
$T/a1.xml: duplicate" "$out"

out=$("$BIN" stats ingest -c "$T/gw.ini" "$T/a1-changed.xml" "$V1/fail-diagnosSaknas.xml" 2>&1)
check "conflict and invalid exit" 1 $?
case "$out" in *"a1-changed.xml: conflict"*"fail-diagnosSaknas.xml: invalid"*) r=yes ;; *) r=no ;; esac
check "conflict and invalid verdicts" yes "$r"

rep() { "$BIN" stats report -c "$T/gw.ini" "$@"; }
csv=$(rep --report intyg_per_sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 \
        --as-of 2016-02-01 --csv)
check "report exit" 0 $?
line=$(printf '%s\n' "$csv" | grep '^intyg_per_sjukfall,unit,123456789,2015-12..2016-01,1,1 intyg,,kvinnor,')
check "two cases of one certificate each" "intyg_per_sjukfall,unit,123456789,2015-12..2016-01,1,1 intyg,,kvinnor,2,ok," "${line%,*},"

json=$(rep --report sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 --as-of 2016-02-01 --json)
case "$json" in *'"period":"2016-01","group_id":"all","group":"Sjukfall","cells":{"kvinnor":{"n":1'*) r=yes ;; *) r=no ;; esac
check "json January one case" yes "$r"

# --as-of D: only certificates signed by D and not revoked by D. Reports of a day before
# j1 (signed 2016-01-20) and the revocation (2016-05-13) must not change when they arrive.
asof_reports() { # as-of day: every output a report of that day gives, one after the other
        rep --report sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 --as-of "$1" --json
        rep --report intyg_per_sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 --as-of "$1" --csv
        rep --report sjukskrivningslangd --level provider --id 123456789 --from 2015-12 --to 2016-01 --as-of "$1" --csv
        rep --report sjukfall --level country --from 2015-12 --to 2016-01 --as-of "$1" --viewer 123456789 --json
        rep --report intyg_per_manad --level country --from 2015-12 --to 2016-01 --as-of "$1" --viewer 123456789 --csv
        rep --report sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 --as-of "$1" --side-by-side --csv
}
day10=$(asof_reports 2016-01-10)
check "as-of reports run" 0 $?
out=$("$BIN" stats ingest -c "$T/gw.ini" "$T/j1.xml" 2>&1)
check "joining certificate stored" "$T/j1.xml: stored" "$out"
check "as of 2016-01-10 unchanged by a later certificate" "$day10" "$(asof_reports 2016-01-10)"
csv=$(rep --report intyg_per_sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 \
        --as-of 2016-02-01 --csv)
line=$(printf '%s\n' "$csv" | grep ',kvinnor,' | grep -v ',0,ok,')
check "as of 2016-02-01 one case of three certificates" \
        "intyg_per_sjukfall,unit,123456789,2015-12..2016-01,3,3 intyg,,kvinnor,1,ok," "${line%,*},"
day21=$(asof_reports 2016-02-01)

out=$("$BIN" stats ingest -c "$T/gw.ini" "$T/revoke-b1.xml" 2>&1)
check "revoke verdict" "$T/revoke-b1.xml: revoked" "$out"
check "as of 2016-01-10 unchanged by the revocation" "$day10" "$(asof_reports 2016-01-10)"
check "as of 2016-02-01 unchanged by a revocation of 2016-05-13" "$day21" "$(asof_reports 2016-02-01)"
csv=$(rep --report intyg_per_sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-01 \
        --as-of 2016-05-13 --csv)
line=$(printf '%s\n' "$csv" | grep ',kvinnor,' | grep -v ',0,ok,')
check "revoked certificate left out from its revocation day" \
        "intyg_per_sjukfall,unit,123456789,2015-12..2016-01,2,2 intyg,,kvinnor,1,ok," "${line%,*},"
json=$(rep --report intyg_per_manad --level unit --id 123456789 --from 2016-01 --to 2016-01 --json)
case "$json" in *'"kvinnor":{"n":1'*) r=yes ;; *) r=no ;; esac
check "without --as-of: j1 counts, b1 does not" yes "$r"

# public country view: one case is under the cutoff, shown as suppressed, not 0
json=$(rep --report sjukfall --level country --from 2015-12 --to 2015-12 --as-of 2016-02-01 --json)
case "$json" in *'"kvinnor":{"suppressed":true}'*'"totalt":{"suppressed":true}'*) r=yes ;; *) r=no ;; esac
check "public view suppresses" yes "$r"

# --as-of cuts the months after "today"
json=$(rep --report sjukfall --level unit --id 123456789 --from 2015-12 --to 2016-06 --as-of 2015-12-31 --json)
case "$json" in *'"to":"2015-12"'*) r=yes ;; *) r=no ;; esac
check "as-of clips the range" yes "$r"

n=$("$BIN" stats report --list | wc -l)
check "report list" 13 "$n"
rep --report nosuch --level country --from 2015-12 --to 2015-12 >/dev/null 2>&1
check "unknown report exit" 2 $?
rep --report sjukfall --level unit --from 2015-12 --to 2015-12 >/dev/null 2>&1
check "unit without --id exit" 2 $?
"$BIN" stats ingest "$T/a1.xml" >/dev/null 2>&1
check "ingest without -c exit" 3 $?
exit $fail
