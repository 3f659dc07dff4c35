#!/usr/bin/env bash
# Agent benchmark (issue 5): perch-admin's agent (built-in node collector plus one exporter
# scrape, pushing every 15 s) side by side with PMM's client pair doing the same job:
# vmagent (Debian's victoria-metrics package) scraping a node_exporter as the node collector
# plus the same exporter, remote-writing to the same Perch server. Measures resident memory
# and CPU (% of one core) of each side over the same window. Loopback only.
#
#   bash bench/agent.sh              # SECONDS_TO_RUN=300 INTERVAL=15s
set -euo pipefail
SECONDS_TO_RUN=${SECONDS_TO_RUN:-300}
INTERVAL=${INTERVAL:-15s}
PORT=${PORT:-19451}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics vmagent prometheus-node-exporter; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y victoria-metrics prometheus-node-exporter)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-admin
work=$(mktemp -d /tmp/perch-agent-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/lib.sh"
start_perch

# The exporter both sides scrape (an application's exporter; its own cost is not counted).
prometheus-node-exporter --web.listen-address=127.0.0.1:19181 >/dev/null 2>&1 & pids+=($!); exporter=$!
# PMM's side: node_exporter as the node collector, and vmagent.
prometheus-node-exporter --web.listen-address=127.0.0.1:19182 >/dev/null 2>&1 & pids+=($!); collector=$!
sleep 1

mkdir -p "$work/agent"
enroll_agent "$work/agent" bench-agent "$INTERVAL"
"$root/target/release/perch-admin" --config "$work/agent/agent.toml" add exporter app --url http://127.0.0.1:19181/metrics >/dev/null
"$root/target/release/perch-admin" --config "$work/agent/agent.toml" agent 2>"$work/agent.log" & pids+=($!); agent=$!

token=$(api_token editor)
echo -n "$token" > "$work/vmagent-token"
cat > "$work/scrape.yml" <<YML
global:
  scrape_interval: $INTERVAL
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["127.0.0.1:19182"]}]
  - job_name: app
    static_configs: [{targets: ["127.0.0.1:19181"]}]
YML
vmagent -promscrape.config="$work/scrape.yml" -remoteWrite.url="https://localhost:$PORT/v1/metrics/write" \
  -remoteWrite.tlsCAFile="$ca" -remoteWrite.bearerTokenFile="$work/vmagent-token" \
  -remoteWrite.tmpDataPath="$work/vmagent-data" -httpListenAddr=127.0.0.1:19183 -loggerLevel=ERROR \
  >"$work/vmagent.log" 2>&1 & pids+=($!); vmagent=$!

# Warm up one interval, then measure over the window.
sleep "${INTERVAL%s}"
a0=$(cpu_s $agent); v0=$(cpu_s $vmagent); n0=$(cpu_s $collector)
sleep "$SECONDS_TO_RUN"
a1=$(cpu_s $agent); v1=$(cpu_s $vmagent); n1=$(cpu_s $collector)
pct() { awk -v a="$1" -v b="$2" -v t="$SECONDS_TO_RUN" 'BEGIN {printf "%.3f", (b-a)/t*100}'; }
series_agent=$(curl -s -u "$engine_auth" "http://$engine_addr/api/v1/query" --data-urlencode 'query=count({node_name="bench-agent"})' | grep -o '"[0-9]*"\]' | tr -d '"]')
series_vmagent=$(curl -s -u "$engine_auth" "http://$engine_addr/api/v1/query" --data-urlencode 'query=count({job=~"node|app",node_name=""})' | grep -o '"[0-9]*"\]' | tr -d '"]')
mkdir -p "$root/bench/results"
out=$root/bench/results/agent-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "# agent benchmark $(date -u +%FT%TZ); $(nproc) cores; interval $INTERVAL; window ${SECONDS_TO_RUN}s; $("$root/target/release/perch-admin" --version); vmagent (victoria-metrics $(dpkg-query -W -f "\${Version}" victoria-metrics 2>/dev/null)); node_exporter $(prometheus-node-exporter --version 2>&1 | head -1 | awk '{print $3}')"
  echo "perch-admin agent: rss_kb=$(rss_kb $agent) peak_kb=$(hwm_kb $agent) cpu_pct_of_one_core=$(pct $a0 $a1) series_per_push=${series_agent:-?}"
  echo "vmagent: rss_kb=$(rss_kb $vmagent) peak_kb=$(hwm_kb $vmagent) cpu_pct=$(pct $v0 $v1)"
  echo "node_exporter (vmagent's collector): rss_kb=$(rss_kb $collector) cpu_pct=$(pct $n0 $n1)"
  echo "vmagent+node_exporter: rss_kb=$(( $(rss_kb $vmagent) + $(rss_kb $collector) )) cpu_pct=$(awk -v a="$(pct $v0 $v1)" -v b="$(pct $n0 $n1)" 'BEGIN {printf "%.3f", a+b}') series_per_push=${series_vmagent:-?}"
} | tee "$out"
echo "results in $out"
