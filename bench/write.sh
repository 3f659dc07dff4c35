#!/usr/bin/env bash
# Write-path benchmark (issue 4): samples/s through Perch's remote-write path (TLS, node token,
# decode, validate, stamp node_id/node_name, re-encode, forward) against writing straight to the
# same bundled VictoriaMetrics, and through nginx as PMM's front door (TLS, the body passed
# through unread), in the same rounds; plus the memory of server and engine. Loopback only.
#
#   bash bench/write.sh          # SERIES=1000 CLIENTS=16 SECONDS_PER_RUN=6 ROUNDS=7 LAYOUT=shared
#   LAYOUT=pinned bash bench/write.sh
#
# 16 clients stand for many agents pushing at once (each keeps one request in flight). Each
# round runs Perch, direct, Perch again and nginx back to back; the cost of each proxy is taken
# against the direct run of its own round, and the median over rounds is reported (this VM's
# speed drifts by tens of percent within minutes). `perch` is sent pushes as perch-admin sends
# them (each series carries the node's node_id/node_name already: Perch checks them and
# forwards the body as sent); `perch_bare` the same series without the two labels (Perch
# stamps and re-encodes every series). The engine and nginx are sent the stamped pushes, so
# the engine stores the same series every way. perch-server runs with its default worker
# count; nginx gets as many workers (NGINX_WORKERS to change).
#
# LAYOUT says who runs where on this 2-core machine:
#   shared: everything on both cores. The engine is CPU-bound, so Perch's CPU comes out of the
#           engine's: the cost measured is Perch's share of the CPU.
#   pinned: the engine alone on core 1 (started there, so it sizes itself for one core), the
#           load generator and perch-server on core 0, alike for both paths: the cost measured
#           is what going through Perch takes off the engine's ingestion rate when Perch has a
#           core of its own, as on any appliance with more cores than this one.
set -euo pipefail
LAYOUT=${LAYOUT:-shared}
SERIES=${SERIES:-1000}
CLIENTS=${CLIENTS:-16}
ROUNDS=${ROUNDS:-7}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
PORT=${PORT:-19447}
NGINX_PORT=${NGINX_PORT:-19448}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics nginx; do
  command -v $tool >/dev/null || { echo "bench: apt-get install -y victoria-metrics nginx-light" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-bench
bench=$root/target/release/perch-bench
work=$(mktemp -d /tmp/perch-write-bench.XXXXXX)
mkdir -p "$root/bench/results"
out=$root/bench/results/write-$(date -u +%Y%m%dT%H%M%SZ).txt
trap 'kill "${perch_pid:-0}" 2>/dev/null || true; [ -s "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"' EXIT
. "$root/bench/lib.sh"
case $LAYOUT in
  shared) pin_load=() ;;
  pinned) PERCH_WRAP="taskset -c 1"; pin_load=(taskset -c 0) ;;
  *) echo "bench: LAYOUT is shared or pinned" >&2; exit 1 ;;
esac
start_perch
# A node token, through the JSON API: every series is stamped with the node's identity, as an
# agent's are.
admin_post /v1/nodes '{"name":"bench-node"}' > "$work/node.json"
sed 's/.*"token":"\([^"]*\)".*/\1/' "$work/node.json" > "$work/token"
node_id=$(sed 's/.*"node_id":"\([^"]*\)".*/\1/' "$work/node.json")
engine_pid=$(pgrep -P "$perch_pid" -f victoria-metrics | head -1)
# Pinned: perch-server's threads move to core 0; the engine it started stays on core 1.
if [ "$LAYOUT" = pinned ]; then taskset -a -p -c 0 "$perch_pid" >/dev/null; fi
# nginx in front of the same engine, as PMM's front door: TLS with the same certificate, the
# body read whole into memory (PMM's client_body_buffer_size is small enough to spill agent
# pushes to disk; here it does not), forwarded on keep-alive connections.
workers=$(grep -o '"workers":[0-9]*' "$work/server.log" | head -1 | cut -d: -f2)
engine_authorization="Basic $(printf %s "$engine_auth" | base64 -w0)"
cat > "$work/nginx.conf" <<NGINX
worker_processes ${NGINX_WORKERS:-${workers:-1}};
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log $work/nginx-access.log;
  upstream engine { server $engine_addr; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $work/data/nginx/certificate.crt;
    ssl_certificate_key $work/data/nginx/certificate.key;
    keepalive_requests 1000000;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    location = /v1/metrics/write {
      proxy_pass http://engine/api/v1/write;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "$engine_authorization";
    }
  }
}
NGINX
# Pinned: beside perch-server on core 0.
"${pin_load[@]}" nginx -c "$work/nginx.conf" -g 'daemon off;' &
for _ in $(seq 100); do [ -s "$work/nginx.pid" ] && break; sleep 0.05; done
sleep 0.2
nginx_pids=$(echo $(cat "$work/nginx.pid") $(pgrep -P "$(cat "$work/nginx.pid")") | tr ' ' ,)
{
  echo "# write benchmark $(date -u +%FT%TZ); $(nproc) cores; $("${PERCH_BIN:-$root/target/release/perch-server}" --version); $(victoria-metrics --version 2>/dev/null | head -1)"
  echo "idle_rss_kb perch=$(rss_kb $perch_pid) engine=$(rss_kb $engine_pid)"
  echo "layout=$LAYOUT perch_workers=${workers:-?} nginx_workers=${NGINX_WORKERS:-${workers:-1}}"
  echo "write $("${pin_load[@]}" "$bench" write --addr 127.0.0.1:$PORT --ca "$ca" --token-file "$work/token" --direct "$engine_addr" \
    --engine-authorization "$engine_authorization" \
    --node-id "$node_id" --node-name bench-node --perch-pid "$perch_pid" --engine-pid "$engine_pid" \
    --peer 127.0.0.1:$NGINX_PORT --peer-pids "$nginx_pids" \
    --series "$SERIES" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS")"
  echo "after_rss_kb perch=$(rss_kb $perch_pid) perch_peak=$(hwm_kb $perch_pid) engine=$(rss_kb $engine_pid)"
} | tee "$out"
echo "results in $out"
