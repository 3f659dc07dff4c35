#!/usr/bin/env bash
# Under attack: perch-server's resident memory and /v1/readyz latency while it is attacked
# from one machine, beside nginx (Debian's 1.22) under the same h2 and body attacks in the
# same run. Each attack runs against a fresh server, from 127.0.0.1, while a probe on
# 127.0.0.2 reads a small answer every 10 ms (perch: /v1/readyz; nginx: `return 200`):
#
#   - h2-idle: 8000 TLS connections that send the h2 preface and nothing more (answering
#     pings), opened as fast as they go and held (issue 17, item 1);
#   - hold-body: 100 HTTP/1.1 POSTs to the write path declaring 8 MiB and holding back their
#     last byte, anonymous and with a valid node token (item 2);
#   - hold-body-h2: one h2 connection with 60 such streams, anonymous and with the token;
#   - huge-password: 20 clients logging in with 1 MB passwords of U+FDFA in a loop (item 5);
#   - spread: 200 clients guessing the admin's password, each attempt from a new address
#     (item 8; perch-bench flood --rotate).
#
#   bash bench/attack.sh                # SECONDS_PER_ATTACK=20
#
# Loopback only; every loop ends by itself. nginx runs one worker, proxies the write path
# to a local upstream with client_max_body_size 8m, and buffers bodies as it does by default.
set -euo pipefail

SECONDS_PER_ATTACK=${SECONDS_PER_ATTACK:-20}
PORT=${PERCH_PORT:-19743}
NGINX_PORT=${NGINX_PORT:-19744}
UP_PORT=${UP_PORT:-19745}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in nginx curl victoria-metrics; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y nginx-light curl victoria-metrics)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-bench
perch=${PERCH_BIN:-$root/target/release/perch-server}
bench=$root/target/release/perch-bench
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # 8000 connections need as many descriptors

work=$(mktemp -d /tmp/perch-attack-bench.XXXXXX)
chmod 755 "$work"
results=$root/bench/results
mkdir -p "$results"
out=$results/attack-$(date -u +%Y%m%dT%H%M%SZ).txt
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
PASSWORD="violet-tractor-lantern-9"
echo "$PASSWORD" > "$work/pw"

start_perch() { # a fresh perch-server in $work/p; sets perch_pid, ca
  rm -rf "$work/p"; mkdir -p "$work/p"
  "$perch" --data-dir "$work/p" --listen 127.0.0.1:$PORT --http-listen off \
    --admin-password-file "$work/pw" --require-2fa off >"$work/perch.log" 2>&1 &
  perch_pid=$!; pids+=($perch_pid)
  ca=$work/p/nginx/ca-certs.pem
  for _ in $(seq 400); do
    [ -s "$ca" ] && curl -sf --cacert "$ca" https://localhost:$PORT/v1/readyz >/dev/null && break
    sleep 0.05
  done
  curl -sf --cacert "$ca" https://localhost:$PORT/v1/readyz >/dev/null || { echo "bench: perch-server did not get ready" >&2; exit 1; }
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

node_token() { # enrolls a node through the API; prints its token
  local csrf enroll
  csrf=$(curl -s --cacert "$ca" -c "$work/jar" -H 'content-type: application/json' \
    -d "{\"name\":\"admin\",\"password\":\"$PASSWORD\"}" https://localhost:$PORT/v1/login | sed 's/.*"csrf":"\([0-9a-f]*\)".*/\1/')
  enroll=$(curl -s --cacert "$ca" -b "$work/jar" -H "x-csrf-token: $csrf" -H "origin: https://localhost:$PORT" \
    -H 'content-type: application/json' -d '{}' https://localhost:$PORT/v1/enroll-tokens | sed 's/.*"token":"\([^"]*\)".*/\1/')
  curl -s --cacert "$ca" -H "authorization: Bearer $enroll" -H 'content-type: application/json' \
    -d '{"name":"attack-node"}' https://localhost:$PORT/v1/nodes | sed 's/.*"token":"\([^"]*\)".*/\1/'
}

# nginx: the certificate of a first perch start, an upstream that answers 204.
start_perch; stop "$perch_pid"
cp "$work/p/nginx/certificate.crt" "$work/p/nginx/certificate.key" "$work/p/nginx/ca-certs.pem" "$work/"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log error;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  server { listen 127.0.0.1:$UP_PORT; location / { return 204; } }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $work/certificate.crt;
    ssl_certificate_key $work/certificate.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location = /v1/readyz { return 200 "ok\n"; }
    location /v1/metrics/write { client_max_body_size 8m; proxy_pass http://127.0.0.1:$UP_PORT; }
  }
}
NGINX
start_nginx() {
  nginx -c "$work/nginx.conf" -g 'daemon off;' &
  nginx_master=$!; pids+=($nginx_master)
  for _ in $(seq 100); do curl -sf --cacert "$work/ca-certs.pem" "https://localhost:$NGINX_PORT/v1/readyz" >/dev/null && break; sleep 0.05; done
  nginx_worker=$(pgrep -P "$nginx_master" | head -1)
}

echo "# attack benchmark $(date -u +%FT%TZ); $(nproc) cores; $("$perch" --version); $(nginx -v 2>&1); ${SECONDS_PER_ATTACK}s per attack" | tee "$out"
attack() { # attack WHO KIND [args]: one attack against a fresh server
  local who=$1 kind=$2; shift 2
  if [ "$who" = perch ]; then
    start_perch
    local extra=()
    [ "${TOKEN:-}" = node ] && extra=(--token "$(node_token)")
    line=$("$bench" attack "$kind" --addr 127.0.0.1:$PORT --ca "$ca" --pid "$perch_pid" \
      --seconds "$SECONDS_PER_ATTACK" "${extra[@]}" "$@")
    stop "$perch_pid"
  else
    start_nginx
    line=$("$bench" attack "$kind" --addr 127.0.0.1:$NGINX_PORT --ca "$work/ca-certs.pem" --pid "$nginx_worker" \
      --seconds "$SECONDS_PER_ATTACK" "$@")
    stop "$nginx_master"
  fi
  echo "server=$who attack=$kind${TOKEN:+ token=$TOKEN} $line" | tee -a "$out"
}

attack perch h2-idle
attack nginx h2-idle
attack perch hold-body
TOKEN=node attack perch hold-body
attack nginx hold-body
attack perch hold-body-h2
TOKEN=node attack perch hold-body-h2
attack nginx hold-body-h2
attack perch huge-password
start_perch
echo "server=perch attack=spread $("$bench" flood --addr 127.0.0.1:$PORT --ca "$ca" --clients 200 --seconds "$SECONDS_PER_ATTACK" --rotate) peak_rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$perch_pid/status)" | tee -a "$out"
stop "$perch_pid"
echo "results in $out"
