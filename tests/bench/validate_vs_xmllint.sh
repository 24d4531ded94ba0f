#!/usr/bin/env bash
# validate_vs_xmllint.sh - full validation (parse + XSD + person id + FK7804 rules + extraction)
# against xmllint's XSD check alone, on the same generated files in the same run. xmllint gets
# every file in one invocation, so it pays process start-up once.
# Usage: bash validate_vs_xmllint.sh BIN_DIR [COUNT]
set -eu
BIN="${1:?usage: validate_vs_xmllint.sh BIN_DIR [COUNT]}"
COUNT="${2:-10000}"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
XSD="$SRC/schemas/interactions/RegisterCertificateInteraction/RegisterCertificateResponder_3.1.xsd"
command -v xmllint >/dev/null || { echo "xmllint not installed"; exit 2; }
DIR="$(mktemp -d /tmp/validate_vs_xmllint.XXXXXX)"
trap 'rm -rf "$DIR"' EXIT

out="$("$BIN/bench_validate" --count "$COUNT" --dir "$DIR/docs" --schemas "$SRC/schemas")"
echo "$out"
ours="$(echo "$out" | sed -n 's/^threads=1 .* rate=\([0-9]*\) intyg.*/\1/p')"

start=$(date +%s.%N)
(cd "$DIR/docs" && ls | grep '\.xml$' | xargs xmllint --noout --nonet --schema "$XSD" 2>"$DIR/xmllint.err" >/dev/null) || true
end=$(date +%s.%N)
ok=$(grep -c ' validates$' "$DIR/xmllint.err" || true)
secs=$(echo "$end - $start" | bc -l)
lint=$(echo "$COUNT / $secs" | bc -l)
printf 'xmllint --schema (XSD only, one process): %d files validated in %.3fs = %.0f docs/s\n' "$ok" "$secs" "$lint"
printf 'intygsgw full validation, 1 thread: %s intyg/s\n' "$ours"
printf 'ratio intygsgw/xmllint: %.2f\n' "$(echo "$ours / $lint" | bc -l)"
[ "$ok" -eq "$COUNT" ] || { echo "xmllint did not validate every file"; exit 1; }
