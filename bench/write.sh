#!/usr/bin/env bash
# Write-path benchmark (issue 4): samples/s through Perch's remote-write path (TLS, node token,
# decode, validate, stamp node_id/node_name, re-encode, forward) against writing straight to the same bundled
# VictoriaMetrics, in the same run; plus the memory of server and engine. Loopback only.
#
#   bash bench/write.sh          # SERIES=1000 CLIENTS=16 SECONDS_PER_RUN=10 ROUNDS=5
#
# 16 clients stand for many agents pushing at once (each keeps one request in flight); rounds
# alternate Perch and direct and the medians are compared.
set -euo pipefail
SERIES=${SERIES:-1000}
CLIENTS=${CLIENTS:-16}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PORT=${PORT:-19447}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v victoria-metrics >/dev/null || { echo "bench: apt-get install -y victoria-metrics" >&2; exit 1; }
cargo build --release --quiet -p perch-server -p perch-bench
perch=$root/target/release/perch-server
bench=$root/target/release/perch-bench
work=$(mktemp -d /tmp/perch-write-bench.XXXXXX)
mkdir -p "$root/bench/results"
out=$root/bench/results/write-$(date -u +%Y%m%dT%H%M%SZ).txt
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
echo "violet-tractor-lantern-9" > "$work/pw"
"$perch" --data-dir "$work" --listen 127.0.0.1:$PORT --http-listen off --admin-password-file "$work/pw" >"$work/log" 2>&1 &
pid=$!
ca=$work/nginx/ca-certs.pem
for _ in $(seq 200); do [ -s "$ca" ] && curl -sf --cacert "$ca" https://localhost:$PORT/v1/readyz >/dev/null && break; sleep 0.05; done
engine=$(grep -o '"listen":"http://[0-9.:]*"' "$work/log" | tail -1 | sed 's/.*http:\/\///; s/"//')
# A node token, through the JSON API: every series is stamped with the node's identity, as an
# agent's are.
csrf=$(curl -s --cacert "$ca" -c "$work/jar" -H 'content-type: application/json' \
  -d '{"name":"admin","password":"violet-tractor-lantern-9"}' https://localhost:$PORT/v1/login | sed 's/.*"csrf":"\([0-9a-f]*\)".*/\1/')
curl -s --cacert "$ca" -b "$work/jar" -H "x-csrf-token: $csrf" -H "origin: https://localhost:$PORT" \
  -H 'content-type: application/json' -d '{"name":"bench-node"}' https://localhost:$PORT/v1/nodes \
  | sed 's/.*"token":"\([^"]*\)".*/\1/' > "$work/token"
engine_pid=$(pgrep -P $pid -f victoria-metrics | head -1)
{
  echo "# write benchmark $(date -u +%FT%TZ); $(nproc) cores; $("$perch" --version); $(victoria-metrics --version 2>/dev/null | head -1)"
  echo "idle_rss_kb perch=$(awk '/VmRSS/ {print $2}' /proc/$pid/status) engine=$(awk '/VmRSS/ {print $2}' /proc/$engine_pid/status)"
  echo "write $("$bench" write --addr 127.0.0.1:$PORT --ca "$ca" --token-file "$work/token" --direct "$engine" \
    --series "$SERIES" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS")"
  echo "after_rss_kb perch=$(awk '/VmRSS/ {print $2}' /proc/$pid/status) perch_peak=$(awk '/VmHWM/ {print $2}' /proc/$pid/status) engine=$(awk '/VmRSS/ {print $2}' /proc/$engine_pid/status)"
} | tee "$out"
echo "results in $out"
