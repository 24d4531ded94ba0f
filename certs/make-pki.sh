#!/usr/bin/env bash
# make-pki.sh OUTDIR - make the complete test PKI of intygsgw (openssl only, ECDSA P-256).
#
# Root CA + CRL, the gateway's server and client certificates, the FK simulator's server
# certificate, three regions' SITHS-like function certificates (HSA-id in subject
# serialNumber), an admin certificate, a revoked one, an expired one and one from a foreign CA.
# Idempotent: on a complete OUTDIR it changes nothing (only a CRL that expires within 7 days
# is re-issued). Concurrent runs on one OUTDIR are serialised with flock. See certs/README.md.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
        echo "usage: $0 OUTDIR" >&2
        exit 2
fi
OUT=$1
DAYS=3650    # validity of the CA and of every good certificate
CRLDAYS=365  # CRL nextUpdate
ORGNAME="intygsgw test PKI"

# name  kind(client|server|both)  serialNumber  CN  extra-SAN
# Client certificates carry the HSA-id (SITHS function certificate style).
CERTS=(
        "gateway         server  -                   gateway.localhost"
        "gateway-client  client  SE2321000016-GW01   intygsgw gateway"
        "fk              server  2021005521          fk.localhost"
        "region-a        client  SE2321000016-7P3K   Region Stockholm EHR"
        "region-b        client  SE2321000131-S0AB   Vastra Gotalandsregionen EHR"
        "region-c        client  SE2321000032-U9X2   Region Uppsala EHR"
        "admin           client  SE2321000016-ADM1   intygsgw admin"
        "revoked         client  SE2321000016-REV1   revoked system"
        "expired         client  SE2321000016-EXP1   expired system"
)
FOREIGN_SERIAL="SE2321000016-FRN1"

FILES=(ca.crt ca.key crl.pem foreign-ca.crt foreign-ca.key foreign.crt foreign.key)
for line in "${CERTS[@]}"; do
        read -r name _ <<<"$line"
        FILES+=("$name.crt" "$name.key")
done

print_ids() {
        local line name kind serial
        for line in "${CERTS[@]}"; do
                read -r name kind serial _ <<<"$line"
                if [ "$kind" = client ]; then
                        echo "$name $serial"
                fi
        done
        echo "foreign $FOREIGN_SERIAL"
}

complete() {
        local f
        for f in "${FILES[@]}"; do
                [ -s "$OUT/$f" ] || return 1
        done
        return 0
}

crl_fresh() {
        # true when crl.pem stays valid for at least 7 more days
        local next
        next=$(openssl crl -in "$OUT/crl.pem" -noout -nextupdate 2>/dev/null | sed 's/^nextUpdate=//') || return 1
        [ -n "$next" ] || return 1
        local t
        t=$(date -d "$next" +%s 2>/dev/null) || return 1
        [ "$t" -gt $(($(date +%s) + 7 * 86400)) ]
}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>>"$OUT/.make-pki.lock"
flock 9
umask 077

# Writes the openssl ca configuration for a CA directory.
write_ca_cnf() {
        local dir=$1
        cat >"$dir/ca.cnf" <<EOF
[ ca ]
default_ca = testca

[ testca ]
dir               = $dir
database          = \$dir/index.txt
new_certs_dir     = \$dir/newcerts
serial            = \$dir/serial
crlnumber         = \$dir/crlnumber
certificate       = \$dir/ca.crt
private_key       = \$dir/ca.key
default_md        = sha256
default_days      = $DAYS
default_crl_days  = $CRLDAYS
policy            = policy_any
unique_subject    = no
copy_extensions   = none
preserve          = yes
email_in_dn       = no

[ policy_any ]
countryName            = optional
organizationName       = optional
organizationalUnitName = optional
commonName             = supplied
serialNumber           = optional

[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
CN = unused

[ v3_ca ]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ client ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer

[ server ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
EOF
        mkdir -p "$dir/newcerts"
        : >"$dir/index.txt"
        echo 1000 >"$dir/serial"
        echo 1000 >"$dir/crlnumber"
}

genkey() {
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
        chmod 600 "$1"
}

# make_ca DIR SUBJECT: self-signed root in DIR/ca.crt, DIR/ca.key
make_ca() {
        local dir=$1 subj=$2
        write_ca_cnf "$dir"
        genkey "$dir/ca.key"
        openssl req -new -x509 -config "$dir/ca.cnf" -key "$dir/ca.key" -subj "$subj" \
                -days "$DAYS" -sha256 -extensions v3_ca -out "$dir/ca.crt"
}

# issue CADIR NAME EXT SUBJECT [startdate enddate] -> STAGE/NAME.crt, STAGE/NAME.key
issue() {
        local cadir=$1 name=$2 ext=$3 subj=$4 start=${5:-} end=${6:-}
        local dates=()
        if [ -n "$start" ]; then
                dates=(-startdate "$start" -enddate "$end")
        fi
        genkey "$STAGE/$name.key"
        openssl req -new -config "$cadir/ca.cnf" -key "$STAGE/$name.key" -subj "$subj" \
                -out "$cadir/$name.csr"
        openssl ca -batch -notext -config "$cadir/ca.cnf" -extensions "$ext" \
                -in "$cadir/$name.csr" -out "$STAGE/$name.crt" "${dates[@]}" 2>/dev/null
}

if complete; then
        if ! crl_fresh && [ -f "$OUT/.ca/ca.cnf" ]; then
                openssl ca -batch -config "$OUT/.ca/ca.cnf" -gencrl -crlexts crl_ext \
                        -out "$OUT/crl.pem.new" 2>/dev/null
                mv -f "$OUT/crl.pem.new" "$OUT/crl.pem"
        fi
        print_ids
        exit 0
fi

STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/.ca" "$STAGE/.foreign-ca"
# The CA's working files (ca.cnf refers to them by absolute path) end up in OUT/.ca.
CADIR_FINAL="$OUT/.ca"
rm -rf "$CADIR_FINAL"
mkdir -p "$CADIR_FINAL"
CA=$CADIR_FINAL
make_ca "$CA" "/C=SE/O=$ORGNAME/CN=intygsgw test root CA"
FCA="$STAGE/.foreign-ca"
make_ca "$FCA" "/C=SE/O=Some Other Org/CN=foreign test CA"

for line in "${CERTS[@]}"; do
        read -r name kind serial cn <<<"$line"
        subj="/C=SE/O=$ORGNAME/CN=$cn"
        if [ "$serial" != "-" ]; then
                subj="$subj/serialNumber=$serial"
        fi
        if [ "$name" = expired ]; then
                issue "$CA" "$name" "$kind" "$subj" 20200101000000Z 20210101000000Z
        else
                issue "$CA" "$name" "$kind" "$subj"
        fi
done
openssl ca -batch -config "$CA/ca.cnf" -revoke "$STAGE/revoked.crt" -crl_reason keyCompromise \
        2>/dev/null
openssl ca -batch -config "$CA/ca.cnf" -gencrl -crlexts crl_ext -out "$STAGE/crl.pem" 2>/dev/null
issue "$FCA" foreign client "/C=SE/O=Some Other Org/CN=foreign system/serialNumber=$FOREIGN_SERIAL"

cp "$CA/ca.crt" "$STAGE/ca.crt"
cp "$CA/ca.key" "$STAGE/ca.key"
cp "$FCA/ca.crt" "$STAGE/foreign-ca.crt"
cp "$FCA/ca.key" "$STAGE/foreign-ca.key"
chmod 600 "$STAGE"/*.key "$CA/ca.key"
chmod 644 "$STAGE"/*.crt "$STAGE/crl.pem"
for f in "${FILES[@]}"; do
        mv -f "$STAGE/$f" "$OUT/$f"
done
print_ids
