#!/usr/bin/env bash
# Fleet benchmark (issue 4): memory of perch-server and its engine idle, then while NODES
# real perch-admin agents (each its own enrolled node, built-in collector plus a
# node_exporter scrape, every 15 s) push for DURATION seconds. Samples RSS every 5 minutes.
# Loopback only; stops by itself.
#
#   bash bench/nodes.sh          # NODES=50 DURATION=3600 INTERVAL=15s
set -euo pipefail
NODES=${NODES:-50}
DURATION=${DURATION:-3600}
INTERVAL=${INTERVAL:-15s}
EVERY=${EVERY:-300}
PORT=${PORT:-19452}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics prometheus-node-exporter; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-admin
work=$(mktemp -d /tmp/perch-nodes-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/lib.sh"
start_perch
engine_pid=$(pgrep -P "$perch_pid" -f victoria-metrics | head -1)
mkdir -p "$root/bench/results"
out=$root/bench/results/nodes-$(date -u +%Y%m%dT%H%M%SZ).txt
sleep 5
{
  echo "# fleet benchmark $(date -u +%FT%TZ); $(nproc) cores; $NODES agents every $INTERVAL for ${DURATION}s; $("$root/target/release/perch-server" --version); $(victoria-metrics --version 2>/dev/null | head -1)"
  echo "t=0 idle perch_rss_kb=$(rss_kb $perch_pid) engine_rss_kb=$(rss_kb $engine_pid)"
} | tee "$out"
prometheus-node-exporter --web.listen-address=127.0.0.1:19191 >/dev/null 2>&1 & pids+=($!)
sleep 1
for i in $(seq -w 1 "$NODES"); do
  mkdir -p "$work/n$i"
  enroll_agent "$work/n$i" "fleet-$i" "$INTERVAL"
  "$root/target/release/perch-admin" --config "$work/n$i/agent.toml" add exporter node_exporter --url http://127.0.0.1:19191/metrics >/dev/null
  "$root/target/release/perch-admin" --config "$work/n$i/agent.toml" agent 2>"$work/n$i/agent.log" & pids+=($!)
done
start=$(date +%s)
p0=$(cpu_s $perch_pid); e0=$(cpu_s $engine_pid)
while :; do
  sleep "$EVERY"
  now=$(( $(date +%s) - start ))
  series=$(curl -s -u "$engine_auth" "http://$engine_addr/api/v1/series/count" | grep -o '[0-9]*' | tail -1 || true)
  echo "t=$now perch_rss_kb=$(rss_kb $perch_pid) perch_peak_kb=$(hwm_kb $perch_pid) engine_rss_kb=$(rss_kb $engine_pid) series=${series:-?} perch_cpu_s=$(awk -v a="$p0" -v b="$(cpu_s $perch_pid)" 'BEGIN{print b-a}') engine_cpu_s=$(awk -v a="$e0" -v b="$(cpu_s $engine_pid)" 'BEGIN{print b-a}') write_errors=$(grep -c '"path":"/v1/metrics/write".*"status":5' "$work/server.log" || true)" | tee -a "$out"
  [ "$now" -ge "$DURATION" ] && break
done
samples=$(curl -s -u "$engine_auth" "http://$engine_addr/api/v1/query" --data-urlencode "query=sum(count_over_time({node_name=~\"fleet-.*\"}[${DURATION}s]))" | grep -o '"[0-9.e+]*"\]' | tr -d '"]' || true)
echo "samples_stored=${samples:-?} agents_with_errors=$(grep -l 'level=warn\|level=error' "$work"/n*/agent.log 2>/dev/null | wc -l)" | tee -a "$out"
grep '"path":"/v1/metrics/write".*"status":5' "$work/server.log" | head -5 >> "$out" || true
echo "results in $out"
