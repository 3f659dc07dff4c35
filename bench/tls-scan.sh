#!/usr/bin/env bash
# TLS scan: testssl.sh (Debian's) against perch-server and against nginx with Mozilla's
# intermediate configuration, side by side, same certificate (perch-server's local CA's
# ECDSA P-256 leaf). Prints every finding rated LOW or worse for each, and the count by
# severity; the full JSON reports go to bench/results/.
#
#   bash bench/tls-scan.sh
#
# Loopback only; testssl.sh's checks that need the internet (revocation lookups) are off.
set -euo pipefail

PERCH_PORT=${PERCH_PORT:-19643}
NGINX_PORT=${NGINX_PORT:-19644}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in testssl nginx curl jq; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y testssl.sh nginx-light curl jq)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server
perch=${PERCH_BIN:-$root/target/release/perch-server}

work=$(mktemp -d /tmp/perch-tls-scan.XXXXXX)
results=$root/bench/results
mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$perch" --data-dir "$work/data" --listen 127.0.0.1:$PERCH_PORT --http-listen off \
  --victoria-metrics-bin /nonexistent >"$work/perch.log" 2>&1 &
pids+=($!)
ca=$work/data/nginx/ca-certs.pem
for _ in $(seq 200); do [ -s "$ca" ] && curl -s --cacert "$ca" -o /dev/null https://localhost:$PERCH_PORT/v1/readyz && break; sleep 0.05; done
certs=$work/data/nginx

# Mozilla's intermediate configuration (ssl-config.mozilla.org, nginx 1.22, OpenSSL 3.0).
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $certs/certificate.crt;
    ssl_certificate_key $certs/certificate.key;
    ssl_session_timeout 1d;
    ssl_session_cache shared:MozSSL:10m;
    ssl_session_tickets off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    add_header Strict-Transport-Security "max-age=63072000" always;
    location / { return 200 "ok\n"; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 100); do curl -s --cacert "$ca" -o /dev/null "https://localhost:$NGINX_PORT/" && break; sleep 0.05; done

echo "# TLS scan $stamp; testssl.sh $(dpkg-query -W -f "\${Version}" testssl.sh 2>/dev/null); $(nginx -v 2>&1); $("$perch" --version)"
for who in perch nginx; do
  port=$PERCH_PORT; [ "$who" = nginx ] && port=$NGINX_PORT
  report=$results/tls-scan-$who-$stamp.json
  # --phone-out stays off (no OCSP/CRL lookups); the local CA's leaf names localhost.
  testssl --quiet --color 0 --warnings off --ip 127.0.0.1 --add-ca "$ca" \
    --jsonfile "$report" "localhost:$port" >"$work/$who.txt" 2>&1 || true
  echo "## $who (localhost:$port)"
  jq -r '.[] | select(.severity != "OK" and .severity != "INFO" and .severity != "DEBUG") | "\(.severity)\t\(.id)\t\(.finding)"' "$report" | sort
  echo "counts: $(jq -r '[.[] | .severity] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$report")"
done
