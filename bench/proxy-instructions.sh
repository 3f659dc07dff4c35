#!/usr/bin/env bash
# Instructions perch-server executes per proxied keep-alive request, counted by callgrind: a
# figure that does not drift with this machine's speed, for comparing two builds of the proxy's
# hot path. An upstream nginx serves a 1 KiB file on a public route; wrk (4 connections) warms
# up for 2 s, then callgrind counts over 5 s and the total is divided by wrk's request count.
#
#   bash bench/proxy-instructions.sh [PATH-TO-perch-server]   # default: the release build
#
# Needs valgrind, wrk and nginx (apt-get install -y valgrind wrk nginx-light). Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in valgrind callgrind_control wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y valgrind wrk nginx-light curl)" >&2; exit 1; }
done
if [ $# -ge 1 ]; then perch=$1; else (cd "$root" && cargo build --release --quiet -p perch-server); perch=$root/target/release/perch-server; fi
PORT=${PERCH_PORT:-19843}; UP_PORT=${UP_PORT:-19845}
work=$(mktemp -d /tmp/perch-instructions.XXXXXX); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/www/app"; head -c 1024 /dev/zero | tr '\0' 'p' > "$work/www/app/index.html"
cat > "$work/upstream.conf" <<NGINX
worker_processes 1;
pid $work/upstream.pid;
error_log $work/upstream-error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; server { listen 127.0.0.1:$UP_PORT; root $work/www; } }
NGINX
nginx -c "$work/upstream.conf" -g 'daemon off;' & pids+=($!)
printf '[[route]]\nprefix = "/app/"\nupstream = "http://127.0.0.1:%s"\nrole = "public"\n' "$UP_PORT" > "$work/routes.toml"
# No engine (a path that does not exist): only the proxy is measured.
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" "$perch" \
  --data-dir "$work/data" --listen 127.0.0.1:$PORT --http-listen off --worker-threads 2 \
  --config "$work/routes.toml" --victoria-metrics-bin /nonexistent >"$work/perch.log" 2>&1 &
vg=$!; pids+=($vg)
ca=$work/data/nginx/ca-certs.pem
url="https://localhost:$PORT/app/index.html"
for _ in $(seq 600); do [ -s "$ca" ] && curl -sf --cacert "$ca" "$url" >/dev/null && break; sleep 0.1; done
curl -sf --cacert "$ca" "$url" >/dev/null || { echo "bench: perch-server did not proxy under valgrind" >&2; exit 1; }
wrk -t1 -c4 -d2s "$url" >/dev/null
callgrind_control -i on "$vg" >/dev/null
text=$(wrk -t1 -c4 -d5s "$url")
callgrind_control -i off "$vg" >/dev/null
callgrind_control -d "$vg" >/dev/null
for _ in $(seq 50); do grep -qs '^totals:' "$work"/callgrind.out* && break; sleep 0.1; done
requests=$(awk '/requests in/ {print $1}' <<<"$text")
instructions=$(cat "$work"/callgrind.out* | awk '/^totals:/ {print $2}' | sort -g | tail -1)
echo "requests=$requests instructions=$instructions per_request=$((instructions / requests))"
