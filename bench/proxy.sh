#!/usr/bin/env bash
# Reverse-proxy benchmark: perch-server against nginx (Debian) as the TLS-terminating reverse
# proxy, side by side in one run, to the same upstream (a second nginx serving a small file
# over plain HTTP/1.1 with keep-alive), same certificate, same worker count, both logging
# each request.
#
#   bash bench/proxy.sh               # WORKERS=2 ROUNDS=3 DURATION=10s CONNS=64
#   ROUNDS=5 bash bench/proxy.sh
#
# Per round, mode and proxy (medians, and medians of the per-round Perch/nginx ratios, go
# in BENCHMARKS.md):
#   - keep-alive HTTPS GET of the small file: requests/s and p99 (wrk)
#   - a new TLS connection per request (`Connection: close`): requests/s and p99
#   - proxy CPU time per request (from /proc/PID/stat), whatever wrk and the upstream take
#   - Perch also with a Viewer API token on a `role = "viewer"` route (the login check
#     nginx does not do)
#   - Perch with hyper-util's connection pool for the plain-HTTP upstream instead of its own
#     HTTP/1.1 pool (PERCH_UPSTREAM_POOL=hyper-util, a second perch-server): whether the
#     own pool pays
# Traffic goes to 127.0.0.1 only; every loop is bounded.
set -euo pipefail

WORKERS=${WORKERS:-2}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PORT=${PERCH_PORT:-19543}
NGINX_PORT=${NGINX_PORT:-19544}
UP_PORT=${UP_PORT:-19545}
HYPER_PORT=${HYPER_PORT:-19546}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y wrk nginx-light curl)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server
# PERCH_BIN=/path/to/perch-server measures another build (an A/B against an older one).
perch=${PERCH_BIN:-$root/target/release/perch-server}

work=$(mktemp -d /tmp/perch-proxy-bench.XXXXXX)
chmod 755 "$work"  # the upstream nginx workers (www-data when run as root) read www/
results=$root/bench/results
mkdir -p "$results"
out=$results/proxy-$(date -u +%Y%m%dT%H%M%SZ).txt
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
source "$root/bench/lib.sh"

# The upstream: nginx, one worker, a 1 KiB file, keep-alive.
mkdir -p "$work/www/app"
head -c 1024 /dev/zero | tr '\0' 'p' > "$work/www/app/index.html"
cat > "$work/upstream.conf" <<NGINX
worker_processes 1;
pid $work/upstream.pid;
error_log $work/upstream-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP_PORT;
    root $work/www;
  }
}
NGINX
nginx -c "$work/upstream.conf" -g 'daemon off;' &
pids+=($!)

# Perch first: its local CA makes the certificate both proxies serve.
cat > "$work/routes.toml" <<TOML
[[route]]
prefix = "/app/"
upstream = "http://127.0.0.1:$UP_PORT"
role = "public"

[[route]]
name = "app-viewer"
prefix = "/private/"
upstream = "http://127.0.0.1:$UP_PORT/app/"
strip_prefix = true
identity_header = "X-WEBAUTH-USER"
TOML
echo "$PASSWORD" > "$work/pw"
"$perch" --data-dir "$work/data" --listen 127.0.0.1:$PORT --http-listen off \
  --admin-password-file "$work/pw" --require-2fa off --worker-threads "$WORKERS" --config "$work/routes.toml" \
  >"$work/perch.log" 2>&1 &
perch_pid=$!; pids+=($perch_pid)
ca=$work/data/nginx/ca-certs.pem
for _ in $(seq 200); do
  [ -s "$ca" ] && curl -sf --cacert "$ca" "https://localhost:$PORT/app/index.html" >/dev/null && break
  sleep 0.05
done
curl -sf --cacert "$ca" "https://localhost:$PORT/app/index.html" >/dev/null || { echo "bench: perch did not proxy" >&2; exit 1; }
csrf=$(curl -s --cacert "$ca" -c "$work/jar" -H 'content-type: application/json' \
  -d "{\"name\":\"admin\",\"password\":\"$PASSWORD\"}" https://localhost:$PORT/v1/login | sed 's/.*"csrf":"\([0-9a-f]*\)".*/\1/')
token=$(api_token viewer)
curl -sf --cacert "$ca" -H "authorization: Bearer $token" "https://localhost:$PORT/private/index.html" >/dev/null \
  || { echo "bench: the viewer route refused the token" >&2; exit 1; }
certs=$work/data/nginx

# The same Perch with hyper-util's pool for plain-HTTP upstreams.
PERCH_UPSTREAM_POOL=hyper-util "$perch" --data-dir "$work/data-hyper" --listen 127.0.0.1:$HYPER_PORT \
  --http-listen off --admin-password-file "$work/pw" --require-2fa off --worker-threads "$WORKERS" \
  --config "$work/routes.toml" >"$work/perch-hyper.log" 2>&1 &
hyper_pid=$!; pids+=($hyper_pid)
for _ in $(seq 200); do
  curl -sfk "https://localhost:$HYPER_PORT/app/index.html" >/dev/null && break
  sleep 0.05
done
curl -sfk "https://localhost:$HYPER_PORT/app/index.html" >/dev/null || { echo "bench: perch (hyper-util pool) did not proxy" >&2; exit 1; }

cat > "$work/nginx.conf" <<NGINX
worker_processes $WORKERS;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  upstream app { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $certs/certificate.crt;
    ssl_certificate_key $certs/certificate.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    keepalive_requests 1000000;
    location /app/ {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$proxy_host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host \$host;
      add_header Strict-Transport-Security "max-age=31536000" always;
    }
  }
}
NGINX
nginx -c "$work/nginx.conf" -g 'daemon off;' &
nginx_pid=$!; pids+=($nginx_pid)
for _ in $(seq 100); do curl -sf --cacert "$ca" "https://localhost:$NGINX_PORT/app/index.html" >/dev/null && break; sleep 0.05; done

proxy_pids() {
  case $1 in
    nginx) cat "$work/nginx.pid"; pgrep -P "$(cat "$work/nginx.pid")" ;;
    perch-hyper) echo $hyper_pid ;;
    *) echo $perch_pid ;;
  esac
}

# wrk_run WHO URL [wrk args] -> "rps p99_ms cpu_us_per_request"
wrk_run() { local who=$1 url=$2; shift 2; wrk_stats "$out" "$(proxy_pids "$who")" "$url" "$@"; }

echo "# reverse-proxy benchmark $(date -u +%FT%TZ) workers=$WORKERS rounds=$ROUNDS duration=$DURATION conns=$CONNS" | tee "$out"
echo "# $(nproc) cores; $(nginx -v 2>&1); $("$perch" --version); upstream: nginx, 1 worker, 1 KiB file" | tee -a "$out"
sleep 1
# This machine's speed drifts by tens of percent over minutes, so the proxies are compared in
# adjacent runs: within a round, each mode runs Perch and nginx back to back (who goes first
# alternates by round), and the ratios of the pairs are the figures that count.
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="perch nginx perch-token perch-hyper"; else order="perch-hyper nginx perch perch-token"; fi
  for mode in keepalive newconn; do
    extra=(); [ $mode = newconn ] && extra=(-H "Connection: close")
    for who in $order; do
      case $who in
        perch) url="https://localhost:$PORT/app/index.html"; auth=() ;;
        nginx) url="https://localhost:$NGINX_PORT/app/index.html"; auth=() ;;
        perch-token) url="https://localhost:$PORT/private/index.html"; auth=(-H "Authorization: Bearer $token") ;;
        perch-hyper) url="https://localhost:$HYPER_PORT/app/index.html"; auth=() ;;
      esac
      read -r rps p99 cpu < <(wrk_run "$who" "$url" "${auth[@]}" "${extra[@]}")
      [ -n "$rps" ] || exit 1
      echo "round=$round proxy=$who mode=$mode rps=$rps p99_ms=$p99 cpu_us=$cpu" | tee -a "$out"
    done
  done
done
echo "rss_kb perch=$(rss_kb $perch_pid) perch_peak=$(hwm_kb $perch_pid) perch_hyper=$(rss_kb $hyper_pid) perch_hyper_peak=$(hwm_kb $hyper_pid)" | tee -a "$out"

echo "## medians over $ROUNDS rounds" | tee -a "$out"
value() { grep "^round=$1 proxy=$2 mode=$3 " "$out" | grep -o " $4=[0-9.]*" | cut -d= -f2; }
for who in perch nginx perch-token perch-hyper; do
  for mode in keepalive newconn; do
    line="median proxy=$who mode=$mode"
    for metric in rps p99_ms cpu_us; do
      line="$line $metric=$(grep "proxy=$who mode=$mode " "$out" | grep -o " $metric=[0-9.]*" | cut -d= -f2 | median)"
    done
    echo "$line" | tee -a "$out"
  done
done
# Per-round ratios Perch / nginx (throughput: above 1 is better; p99 and CPU: below 1 is better).
for mode in keepalive newconn; do
  line="ratio perch/nginx mode=$mode"
  for metric in rps p99_ms cpu_us; do
    ratios=$(for round in $(seq "$ROUNDS"); do
      awk -v a="$(value $round perch $mode $metric)" -v b="$(value $round nginx $mode $metric)" 'BEGIN {printf "%.3f\n", a/b}'
    done)
    line="$line $metric=$(echo "$ratios" | median) (rounds: $(echo $ratios))"
  done
  echo "$line" | tee -a "$out"
done
# Per-round ratios of Perch's own HTTP/1.1 pool to hyper-util's (the same binary).
for mode in keepalive newconn; do
  line="ratio perch/perch-hyper mode=$mode"
  for metric in rps p99_ms cpu_us; do
    ratios=$(for round in $(seq "$ROUNDS"); do
      awk -v a="$(value $round perch $mode $metric)" -v b="$(value $round perch-hyper $mode $metric)" 'BEGIN {printf "%.3f\n", a/b}'
    done)
    line="$line $metric=$(echo "$ratios" | median) (rounds: $(echo $ratios))"
  done
  echo "$line" | tee -a "$out"
done
echo "results in $out"
