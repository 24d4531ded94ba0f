#!/usr/bin/env bash
# validate_cli.sh - `intygsgw validate` over every sample: verdicts, JSON lines, exit codes.
# Usage: bash validate_cli.sh BIN_DIR   (BIN_DIR holds the intygsgw program)
set -u
BIN="${1:?usage: validate_cli.sh BIN_DIR}/intygsgw"
SRC="$(cd "$(dirname "$0")/../.." && pwd)"
DATA="$SRC/tests/data"
SCHEMAS="$SRC/schemas"
fail=0
check() { # name expected actual
        if [ "$2" != "$3" ]; then
                echo "FAIL: $1: expected $2, got $3"
                fail=1
        else
                echo "ok: $1"
        fi
}
run() { "$BIN" validate --schemas "$SCHEMAS" "$@" >/tmp/validate_cli.$$ 2>&1; echo $?; }

valid=(fleraSjukskrivningOchOmArbetstidsforlaggning.xml lisjp.xml pass-diagnos-med-bidiagnoser.xml
       pass-diagnosPsykiskDiagnoskod.xml pass-flera-sysselsattningar.xml pass-grundForMUFyraSvar.xml
       pass-minimal.xml pass-prognos.xml pass-smittskydd-false.xml pass-smittskydd.xml revokerequest.xml)
declare -A invalid=(
        [fail-arbetstidsforlaggningMotiveringBordeInteFinnas.xml]=q33.1-33.2
        [fail-diagnosPsykiskDiagnoskodFelAntalTecken.xml]=q6.2
        [fail-diagnosSaknas.xml]=intyg
        [fail-diagnoserMedOlikaKodsystem.xml]=q6.2-6.4-6.6-R12
        [fail-diagnoskodMedMindreAnTrePositioner.xml]=q6.2
        [fail-grundForMUBeskrivningBordeInteFinnas.xml]=q1.3
        [fail-grundForMUBeskrivningSaknas.xml]=q1.1-1.3
        [fail-sjukskrivning25Till75ProcentArbetstidsforlaggningSaknas.xml]=q32.1-33
        [fail-sjukskrivningSaknas.xml]=intyg
        [fail-sysselsattningNuvarandeArbeteBeskrivningSaknas.xml]=q28.1-q29
        [sjukskrivningOverlappandePerioder.xml]=q32
        [prognosMedDelfraga39-2.xml]=q39
)

for f in "${valid[@]}"; do
        check "warn $f" 0 "$(run --person-id-check=warn "$DATA/lisjp-v1/$f")"
done
for f in "${!invalid[@]}"; do
        check "warn $f" 1 "$(run --person-id-check=warn "$DATA/lisjp-v1/$f")"
        out=$("$BIN" validate --json --person-id-check=warn --schemas "$SCHEMAS" "$DATA/lisjp-v1/$f")
        case "$out" in
        *"\"valid\":false"*"\"rule\":\"${invalid[$f]}\""*) echo "ok: $f names ${invalid[$f]}" ;;
        *) echo "FAIL: $f: rule ${invalid[$f]} not named: $out"; fail=1 ;;
        esac
done

# strict is the default: the upstream patient fails the Luhn check
check "strict lisjp.xml" 1 "$(run "$DATA/lisjp-v1/lisjp.xml")"
grep -q "person-id" /tmp/validate_cli.$$ || { echo "FAIL: strict names person-id"; fail=1; }
check "strict revokerequest (Tolvan)" 0 "$(run "$DATA/lisjp-v1/revokerequest.xml")"
for f in "$DATA"/gw/*.xml; do
        check "strict $(basename "$f")" 0 "$(run "$f")"
done

# several files: 0 only if all valid, 1 if any invalid
check "all valid" 0 "$(run "$DATA/gw/lisjp-v1-tolvan.xml" "$DATA/gw/lisjp-v2-tolvan.xml")"
check "one invalid" 1 "$(run "$DATA/gw/lisjp-v1-tolvan.xml" "$DATA/lisjp-v1/fail-diagnosSaknas.xml")"

# JSON: one line per file, warnings listed
out=$("$BIN" validate --json --person-id-check=warn --schemas "$SCHEMAS" "$DATA/lisjp-v1/lisjp.xml" "$DATA/gw/lisjp-v1-tolvan.xml")
check "json lines" 2 "$(printf '%s\n' "$out" | wc -l | tr -d ' ')"
case "$out" in
*'"valid":true,"errors":[],"warnings":[{"rule":"person-id"'*) echo "ok: json warning" ;;
*) echo "FAIL: json: $out"; fail=1 ;;
esac
printf '%s\n' "$out" | grep -q '192703104321' && { echo "FAIL: personnummer in output"; fail=1; }

# refusals and usage
printf '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>' >/tmp/validate_cli_xxe.$$
check "xxe refused" 1 "$(run /tmp/validate_cli_xxe.$$)"
grep -q xml_doctype /tmp/validate_cli.$$ || { echo "FAIL: xml_doctype not named"; fail=1; }
check "missing file" 2 "$(run /nonexistent.xml)"
check "no files" 2 "$(run)"
check "bad option" 2 "$(run --frobnicate "$DATA/gw/lisjp-v1-tolvan.xml")"
check "bad schema dir" 2 "$("$BIN" validate --schemas /nonexistent "$DATA/gw/lisjp-v1-tolvan.xml" >/dev/null 2>&1; echo $?)"
check "env schema dir" 0 "$(INTYGSGW_SCHEMAS="$SCHEMAS" "$BIN" validate "$DATA/gw/lisjp-v1-tolvan.xml" >/dev/null 2>&1; echo $?)"
rm -f /tmp/validate_cli.$$ /tmp/validate_cli_xxe.$$
exit $fail
