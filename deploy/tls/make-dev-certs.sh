#!/usr/bin/env bash
# A development CA and a server certificate it signs for localhost, 127.0.0.1 and the compose
# service names, for deploy/docker-compose.yml: deploy/tls/{ca.pem,cert.pem,key.pem}.
# Clients trust ca.pem: `touchstone ... --server https://localhost:50051 --tls-ca deploy/tls/ca.pem`.
# Not for production: use certificates from your own CA there.
set -euo pipefail
cd "$(dirname "$0")"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=touchstone dev CA" -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:ingest,DNS:query,DNS:attribution-1,DNS:attribution-2\nbasicConstraints=CA:FALSE\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 -extfile ext.cnf -out cert.pem 2>/dev/null
rm -f server.csr ext.cnf ca.srl
chmod 600 key.pem ca.key
echo "wrote $(pwd)/ca.pem, cert.pem, key.pem"
