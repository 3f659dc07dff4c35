#!/usr/bin/env bash
# Dashboard benchmark (issue 6): server time to render the node page for 24 h at the
# default resolution, with NODES nodes' history in the bundled engine (enrolled through
# Perch's API, then HOURS of the node dashboard's series written straight into the engine
# by perch-bench backfill), and the page's weight. Loopback only; bounded.
#
#   bash bench/dashboard.sh            # NODES=50 HOURS=24 RUNS=50
set -euo pipefail
NODES=${NODES:-50}
HOURS=${HOURS:-24}
RUNS=${RUNS:-50}
PORT=${PORT:-19462}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v victoria-metrics >/dev/null || { echo "bench: victoria-metrics is missing" >&2; exit 1; }
cargo build --release --quiet -p perch-server -p perch-bench
work=$(mktemp -d /tmp/perch-dash-bench.XXXXXX)
cleanup() { kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/lib.sh"
start_perch
mkdir -p "$root/bench/results"
out=$root/bench/results/dashboard-$(date -u +%Y%m%dT%H%M%SZ).txt
echo "# dashboard benchmark $(date -u +%FT%TZ); $(nproc) cores; $NODES nodes x ${HOURS} h; $("$root/target/release/perch-server" --version); $(victoria-metrics --version 2>/dev/null | head -1)" | tee "$out"

backfill_nodes "$NODES" "$HOURS" "$out"
first_id=${nodes%%:*}

# Server time: from the request sent to the first byte of the answer, on a warm connection
# pool (curl reuses nothing between runs, so the TLS handshake is excluded by subtracting
# time_pretransfer).
url="https://localhost:$PORT/nodes/$first_id?range=24h"
curl -s --cacert "$ca" -b "$work/jar" -o "$work/page.html" -w '%{http_code}\n' "$url" | grep -q 200 || { echo "bench: the node page failed" >&2; exit 1; }
for _ in $(seq "$RUNS"); do
  curl -s --cacert "$ca" -b "$work/jar" -o /dev/null -w '%{time_pretransfer} %{time_total}\n' "$url"
done | awk '{print ($2 - $1) * 1000}' | sort -g > "$work/times"
p() { awk -v p="$1" '{a[NR]=$1} END {i=int((NR-1)*p+0.5)+1; printf "%.1f", a[i]}' "$work/times"; }
bytes=$(wc -c < "$work/page.html")
assets=$(for a in perch.css chart.css chart.js favicon.svg; do curl -s --cacert "$ca" "https://localhost:$PORT/static/$a" | wc -c; done | awk '{s+=$1} END {print s}')
external=$( (grep -oE '(src|href)="(https?:)?//[^"]*"' "$work/page.html" || true) | wc -l)
charts=$(grep -o '<figure class="chart"' "$work/page.html" | wc -l)
echo "node_page_24h render_ms_p50=$(p 0.5) render_ms_p90=$(p 0.9) render_ms_max=$(p 1.0) runs=$RUNS html_bytes=$bytes static_bytes=$assets total_bytes=$((bytes + assets)) charts=$charts external_requests=$external" | tee -a "$out"
url="https://localhost:$PORT/?range=24h"
for _ in $(seq "$RUNS"); do
  curl -s --cacert "$ca" -b "$work/jar" -o /dev/null -w '%{time_pretransfer} %{time_total}\n' "$url"
done | awk '{print ($2 - $1) * 1000}' | sort -g > "$work/times"
echo "overview_24h nodes=$NODES render_ms_p50=$(p 0.5) render_ms_p90=$(p 0.9) html_bytes=$(curl -s --cacert "$ca" -b "$work/jar" "$url" | wc -c)" | tee -a "$out"
echo "results in $out"
