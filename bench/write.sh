#!/usr/bin/env bash
# Write-path benchmark (issue 4): samples/s through Perch's remote-write path (TLS, node token,
# decode, validate, stamp node_id/node_name, re-encode, forward) against writing straight to the same bundled
# VictoriaMetrics, in the same run; plus the memory of server and engine. Loopback only.
#
#   bash bench/write.sh          # SERIES=1000 CLIENTS=16 SECONDS_PER_RUN=10 ROUNDS=5 LAYOUT=shared
#   LAYOUT=pinned bash bench/write.sh
#
# 16 clients stand for many agents pushing at once (each keeps one request in flight); rounds
# alternate Perch and direct and the medians are compared. The engine stores the same series
# either way (the direct pushes carry the node labels Perch would stamp).
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
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PORT=${PORT:-19447}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v victoria-metrics >/dev/null || { echo "bench: apt-get install -y victoria-metrics" >&2; exit 1; }
cargo build --release --quiet -p perch-server -p perch-bench
bench=$root/target/release/perch-bench
work=$(mktemp -d /tmp/perch-write-bench.XXXXXX)
mkdir -p "$root/bench/results"
out=$root/bench/results/write-$(date -u +%Y%m%dT%H%M%SZ).txt
trap 'kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
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
{
  echo "# write benchmark $(date -u +%FT%TZ); $(nproc) cores; $("$root/target/release/perch-server" --version); $(victoria-metrics --version 2>/dev/null | head -1)"
  echo "idle_rss_kb perch=$(rss_kb $perch_pid) engine=$(rss_kb $engine_pid)"
  echo "layout=$LAYOUT"
  echo "write $("${pin_load[@]}" "$bench" write --addr 127.0.0.1:$PORT --ca "$ca" --token-file "$work/token" --direct "$engine_addr" \
    --node-id "$node_id" --node-name bench-node --perch-pid "$perch_pid" --engine-pid "$engine_pid" \
    --series "$SERIES" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --rounds "$ROUNDS")"
  echo "after_rss_kb perch=$(rss_kb $perch_pid) perch_peak=$(hwm_kb $perch_pid) engine=$(rss_kb $engine_pid)"
} | tee "$out"
echo "results in $out"
