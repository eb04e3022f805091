#!/usr/bin/env bash
# Makes the certificates the TLS tests use, into DIR (default: a directory
# per user under /tmp). Test-only: a throwaway CA, never a production
# default. Safe to run again: an existing complete set is kept.
#
#   ca.pem           the test CA (ECDSA P-256), trusted by the tests
#   server.pem/key   localhost, 127.0.0.1, ::1, signed by the CA
#   other.pem/key    other.test and *.other.test (the SNI choice)
#   expired.pem/key  localhost, signed by the CA, expired in 2020
#   self.pem/key     localhost, self-signed
#   unknown.pem/key  localhost, signed by a CA nobody trusts
#   client.pem/key   a client certificate (CN=client), signed by the CA
#   rsa.pem/key      localhost with an RSA key, signed by the CA
set -euo pipefail
dir=${1:-/tmp/eddy-test-certs-$(id -u)}
[ -f "$dir/complete" ] && { echo "$dir"; exit 0; }
mkdir -p "$dir"
cd "$dir"
rm -f complete

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ext() { printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$1" > "$2"; }

# Two CAs: the trusted one and a stranger.
for ca in ca ca2; do
  ec $ca.key
  openssl req -x509 -new -key $ca.key -days 3650 -subj "/O=eddy tests/CN=eddy test $ca" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out $ca.pem 2>/dev/null
done

# leaf NAME SAN CA [keyfile-maker]
leaf() {
  local name=$1 san=$2 ca=$3
  [ -f $name.key ] || ec $name.key
  openssl req -new -key $name.key -subj "/O=eddy tests/CN=${4:-localhost}" -out $name.csr 2>/dev/null
  ext "$san" $name.ext
  openssl x509 -req -in $name.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial \
    -days 825 -extfile $name.ext -out $name.pem 2>/dev/null
}

local_san="DNS:localhost,IP:127.0.0.1,IP:::1"
leaf server "$local_san" ca
leaf other "DNS:other.test,DNS:*.other.test" ca other.test
leaf unknown "$local_san" ca2
leaf client "DNS:client" ca client
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null
leaf rsa "$local_san" ca

# Self-signed.
ec self.key
openssl req -x509 -new -key self.key -days 825 -subj "/CN=localhost" \
  -addext "subjectAltName=$local_san" -out self.pem 2>/dev/null

# Expired: openssl ca is the tool that takes explicit dates.
ec expired.key
openssl req -new -key expired.key -subj "/O=eddy tests/CN=localhost" \
  -addext "subjectAltName=$local_san" -out expired.csr 2>/dev/null
mkdir -p newcerts && : > index.txt && echo 1000 > serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = newcerts
serial = serial
default_md = sha256
policy = any
copy_extensions = copy
[ any ]
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20200201000000Z -notext -out expired.pem 2>/dev/null

# A chain file: the server certificate followed by the CA (as a chain with
# an intermediate would be laid out).
cat server.pem ca.pem > server-chain.pem
touch complete
echo "$dir"
