#!/usr/bin/env bash
# Query Analytics benchmark (issue 23), MariaDB with 500 distinct query fingerprints:
#  1. the agent's extra CPU for Query Analytics: two perch-admin agents side by side in the
#     same run, each watching the same MariaDB, one with Query Analytics (perfschema), one
#     with --query-source=none; their own CPU (not their exporters') over the same window;
#  2. the server's storage per service per day: the engine's folder before and after 24 h of
#     one service's reports (at the agent's interval, all 500 fingerprints each, figures like
#     the live run's) are sent through POST /v1/qan/report, flushed; plus the text store; and
#     the samples a day the live service's series take;
#  3. the Query Analytics page and API for that 24 h range: median of RUNS requests.
# Loopback only; MariaDB is started here in a temporary folder.
#
#   bash bench/qan.sh              # SECONDS_TO_RUN=300 INTERVAL=15s RUNS=7
set -euo pipefail
SECONDS_TO_RUN=${SECONDS_TO_RUN:-300}
INTERVAL=${INTERVAL:-15s}
RUNS=${RUNS:-7}
PORT=${PORT:-19471}
FINGERPRINTS=500
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics prometheus-mysqld-exporter mariadb-install-db python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y victoria-metrics prometheus-mysqld-exporter mariadb-server python3 curl)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-admin
work=$(mktemp -d /tmp/perch-qan-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT
. "$root/bench/lib.sh"
start_perch

# MariaDB with performance_schema, its monitoring user as the README gives it.
start_mariadb 19472 --performance-schema=ON
my() { mariadb --no-defaults -S "$work/my.sock" -uroot "$@"; }
my -e "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY, v INT); INSERT INTO shop.t VALUES (1, 1), (2, 2), (3, 3);"

# The workload: 500 distinct fingerprints (an alias each), all run every second.
for i in $(seq 1 $FINGERPRINTS); do echo "SELECT v AS c$i FROM shop.t WHERE id = $(( i % 3 + 1 ));"; done > "$work/workload.sql"
( while :; do my shop < "$work/workload.sql" >/dev/null 2>&1 || true; sleep 1; done ) & pids+=($!)

# Two agents, one service each on the same MariaDB: with and without Query Analytics.
admin() { "$root/target/release/perch-admin" --config "$work/$1/agent.toml" "${@:2}"; }
for side in qan noqan; do
  mkdir -p "$work/$side"
  enroll_agent "$work/$side" "bench-$side" "$INTERVAL"
done
PERCH_DB_PASSWORD=bench-mysql-pw admin qan add mysql bench-qan 127.0.0.1:19472 --username perch --disable-queryexamples --qan-top 1000
PERCH_DB_PASSWORD=bench-mysql-pw admin noqan add mysql bench-noqan 127.0.0.1:19472 --username perch --query-source none >/dev/null
# The binary itself (not through the function), so that $! is the agent's own pid.
"$root/target/release/perch-admin" --config "$work/qan/agent.toml" agent 2>"$work/qan.log" & pids+=($!); agent_qan=$!
"$root/target/release/perch-admin" --config "$work/noqan/agent.toml" agent 2>"$work/noqan.log" & pids+=($!); agent_noqan=$!

# Warm up two intervals (the first reading is the baseline), then measure over the window.
sleep $(( 2 * ${INTERVAL%s} + 2 ))
# CPU in clock ticks (1/CLK_TCK s), summed over the window.
q0=$(cpu_ticks $agent_qan); n0=$(cpu_ticks $agent_noqan); t0=$(date +%s)
sleep "$SECONDS_TO_RUN"
q1=$(cpu_ticks $agent_qan); n1=$(cpu_ticks $agent_noqan); t1=$(date +%s)
window=$((t1 - t0))
hz=$(getconf CLK_TCK)
query() { curl -s -u "$engine_auth" "http://$engine_addr/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$t1" | grep -o '"[0-9.e+]*"\]' | tr -d '"]' | head -1; }
sel='{__name__=~"perch_qan_.+",service_name="bench-qan"}'
# Samples the service's series took in the window (the engine shows writes 5 s late).
sleep 6
samples=$(query "sum(count_over_time(${sel}[${window}s]))")
series=$(query "count(last_over_time(${sel}[${window}s]))")
fingerprints=$(query "count(count by (fingerprint) (last_over_time(perch_qan_queries{service_name=\"bench-qan\"}[${window}s])))")
# The engine's folder on disk, after it flushed what it holds in memory.
engine_bytes() {
  curl -s -u "$engine_auth" "http://$engine_addr/internal/force_flush" >/dev/null || true
  sleep 3
  du -sb "$work/data/victoriametrics" | cut -f1
}
text_bytes() { curl -s --cacert "$ca" -b "$work/jar" "https://localhost:$PORT/metrics" | awk '/^perch_qan_text_bytes / {print $2}'; }
before_bytes=$(engine_bytes); before_text=$(text_bytes)

# 24 h of one service's reports, at the agent's interval, all 500 fingerprints each.
token=$(sed -n 's/^token = "\(.*\)"/\1/p' "$work/qan/agent.toml")
b0=$(date +%s)
python3 - "$PORT" "$ca" "$token" "${INTERVAL%s}" <<'PY'
import http.client, json, random, ssl, sys, time
port, ca, token, every = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
now = int(time.time()) - 60
ids = ["%032x" % (0xb0000 + i) for i in range(500)]
sent = set()
rng = random.Random(7)
for end in range(now - 86400 + every, now + 1, every):
    chosen = ids
    # Figures that vary like real ones (timings are never twice the same).
    queries = []
    for i in chosen:
        n = 15 + rng.randint(-2, 2)
        mean = 0.00005 * (1 + int(i[-3:], 16) % 50) * (0.7 + 0.6 * rng.random())
        queries.append({"id": i, "schema": "shop", "count": n, "time_s": n * mean,
                        "max_s": mean * (1 + rng.random()), "rows_sent": n, "rows_examined": n,
                        "no_index_used": 0})
    texts = [{"id": i, "text": "SELECT `v` AS `c%d` FROM `shop` . `t` WHERE `id` = ?" % int(i[-3:], 16)} for i in chosen if i not in sent]
    body = json.dumps({"service": "bench-day", "service_type": "mysql", "source": "perfschema",
                       "start": end - every, "end": end, "queries": queries, "texts": texts})
    conn.request("POST", "/v1/qan/report", body, {"authorization": "Bearer " + token, "content-type": "application/json"})
    r = conn.getresponse(); answer = r.read()
    if r.status != 200:
        sys.exit("report refused: %d %s" % (r.status, answer[:300]))
    sent.update(t["id"] for t in texts)
PY
backfill_s=$(( $(date +%s) - b0 ))
sleep 6
after_bytes=$(engine_bytes); after_text=$(text_bytes)
page_ms() {
  for _ in $(seq "$RUNS"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --cacert "$ca" -b "$work/jar" "https://localhost:$PORT$1"
  done | awk '$1 != 200 {print "bench: HTTP " $1 " for '"$1"'" > "/dev/stderr"; exit 1} {print $2 * 1000}' | median
}
page=$(page_ms "/qan?service=bench-day&range=24h")
api=$(page_ms "/v1/qan/queries?service=bench-day&range=24h")
detail_id=$(curl -s --cacert "$ca" -b "$work/jar" "https://localhost:$PORT/v1/qan/queries?service=bench-day&range=24h&limit=1" | grep -o '"fingerprint":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
detail=$(page_ms "/qan/$detail_id?service=bench-day&range=24h")
rows_24h=$(curl -s --cacert "$ca" -b "$work/jar" "https://localhost:$PORT/v1/qan/queries?service=bench-day&range=24h&limit=500" | grep -o '"fingerprint"' | wc -l)

mkdir -p "$root/bench/results"
out=$root/bench/results/qan-$(date -u +%Y%m%dT%H%M%SZ).txt
awk -v s="$samples" -v w="$window" -v hz="$hz" -v b0="$before_bytes" -v b1="$after_bytes" -v t0="${before_text:-0}" -v t1="${after_text:-0}" \
    -v q0="$q0" -v q1="$q1" -v n0="$n0" -v n1="$n1" -v series="$series" -v fp="$fingerprints" \
    -v interval="$INTERVAL" -v page="$page" -v api="$api" -v detail="$detail" -v rows24="$rows_24h" -v bf="$backfill_s" \
    -v version="$(admin qan --version)" -v date="$(date -u +%FT%TZ)" -v cores="$(nproc)" 'BEGIN {
  qan = (q1 - q0) / hz / w * 100; noqan = (n1 - n0) / hz / w * 100
  per_day = s / w * 86400
  printf "# Query Analytics benchmark %s; %d cores; interval %s; window %ds; %s; MariaDB with %d distinct fingerprints run every second\n", date, cores, interval, w, version, 500
  printf "agent with Query Analytics (--qan-top 1000): cpu_pct_of_one_core=%.3f\n", qan
  printf "agent without (--query-source none): cpu_pct_of_one_core=%.3f\n", noqan
  printf "extra CPU for Query Analytics: %.3f %% of one core\n", qan - noqan
  printf "live service: fingerprints reported=%d series=%d samples_in_window=%d samples_per_day=%.0f\n", fp, series, s, per_day
  printf "24 h of one service with 500 fingerprints: engine folder +%.1f MB (%d -> %d bytes), text store +%d bytes; sent in %s s; fingerprints in the 24 h list=%d\n", (b1 - b0) / 1e6, b0, b1, t1 - t0, bf, rows24
  printf "page /qan 24h p50_ms=%.0f; API /v1/qan/queries 24h p50_ms=%.0f; one query /qan/{id} 24h p50_ms=%.0f\n", page, api, detail
}' | tee "$out"
echo "results in $out"
