#!/usr/bin/env bash
# Alerting benchmark (issue 18), in one run on loopback; stops by itself.
#
#   bash bench/alerting.sh            # NODES=50 DURATION=300 RUNS=5
#
# 1. Latency: a condition becomes true (a series the script writes every 2 s, rule
#    `bench_condition > 0` with `for: 10s`, evaluated every 10 s) until a webhook the script
#    runs receives the firing notification. Target: for + one evaluation interval + 5 s = 25 s.
#    (Alertmanager's group wait is 1 s here; its default, 30 s, gathers alerts into one
#    notification and adds up to that.) RUNS times, each a new alert.
# 2. Load: NODES real perch-admin agents (built-in collector, every 15 s) push while every
#    built-in rule is on (the defaults, evaluated every 30 s): CPU seconds and RSS of vmalert
#    and Alertmanager over DURATION seconds.
# 3. The anchor, side by side in the same run: two Debian Prometheus servers (2.42) take the
#    same nodes' series from the engine (/federate every 15 s); one evaluates the same rule
#    file (Perch's rendered built-in rules), the other none. The difference is what the
#    rules cost Prometheus.
set -euo pipefail
NODES=${NODES:-50}
DURATION=${DURATION:-300}
RUNS=${RUNS:-5}
PORT=${PORT:-19462}
HOOK_PORT=${HOOK_PORT:-19463}
PROM_PORT=${PROM_PORT:-19464}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics vmalert prometheus-alertmanager prometheus python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-admin
work=$(mktemp -d /tmp/perch-alerting-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/lib.sh"
PERCH_ARGS="--alert-evaluation-interval 30s --alert-group-wait 1s --alert-group-interval 10s" start_perch
vmalert_pid=$(pgrep -P "$perch_pid" -f 'vmalert -envflag' | head -1)
am_pid=$(pgrep -P "$perch_pid" -f prometheus-alertmanager | head -1)
mkdir -p "$root/bench/results"
out=$root/bench/results/alerting-$(date -u +%Y%m%dT%H%M%SZ).txt
echo "# alerting benchmark $(date -u +%FT%TZ); $(nproc) cores; $("$root/target/release/perch-server" --version); vmalert $(dpkg-query -W -f '${Version}' victoria-metrics); alertmanager $(dpkg-query -W -f '${Version}' prometheus-alertmanager); prometheus $(dpkg-query -W -f '${Version}' prometheus)" | tee "$out"

# A webhook that notes when each firing BenchCondition arrives (ms since the epoch, run).
cat > "$work/hook.py" <<'PY'
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get('content-length', 0))))
        now = int(time.time() * 1000)
        with open(sys.argv[2], 'a') as f:
            for a in body.get('alerts', []):
                if a['status'] == 'firing' and a['labels'].get('alertname') == 'BenchCondition':
                    f.write(f"{now} {a['labels'].get('run')}\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/hook.py" "$HOOK_PORT" "$work/hook.log" & pids+=($!)
admin_post /v1/receivers "{\"name\":\"bench\",\"kind\":\"webhook\",\"fields\":{\"url\":\"http://127.0.0.1:$HOOK_PORT/\"}}" >/dev/null
curl -s --cacert "$ca" -b "$work/jar" -H "x-csrf-token: $csrf" -H "origin: https://localhost:$PORT" \
  -H 'content-type: application/json' -X PUT -d '{"default_receiver":"bench","routes":[]}' "https://localhost:$PORT/v1/routing" >/dev/null
printf 'groups:\n- name: bench\n  interval: 10s\n  rules:\n  - alert: BenchCondition\n    expr: bench_condition > 0\n    for: 10s\n' > "$work/data/alerts/bench.yml"
for _ in $(seq 60); do
  curl -s --cacert "$ca" -b "$work/jar" "https://localhost:$PORT/v1/rules" | grep -q '"name":"bench"' && break
  sleep 1
done
touch "$work/hook.log"
lat=()
for run in $(seq 1 "$RUNS"); do
  t0=$(date +%s%3N)
  ( while :; do curl -s -u "$engine_auth" "http://$engine_addr/api/v1/import/prometheus" --data-binary "bench_condition{run=\"$run\"} 1" >/dev/null; sleep 2; done ) & writer=$!
  for _ in $(seq 600); do grep -q " $run\$" "$work/hook.log" && break; sleep 0.1; done
  kill "$writer" 2>/dev/null || true; wait "$writer" 2>/dev/null || true
  t1=$(awk -v r="$run" '$2==r {print $1; exit}' "$work/hook.log")
  ms=$(( ${t1:-0} - t0 ))
  lat+=("$ms")
  echo "latency run=$run condition_to_webhook_ms=$ms" | tee -a "$out"
  sleep 12  # the previous series goes stale before the next run
done
echo "latency median_ms=$(printf '%s\n' "${lat[@]}" | median) target_ms=25000" | tee -a "$out"

# Load: NODES agents and every built-in rule.
for i in $(seq -w 1 "$NODES"); do
  mkdir -p "$work/n$i"
  enroll_agent "$work/n$i" "fleet-$i" 15s
  "$root/target/release/perch-admin" --config "$work/n$i/agent.toml" agent 2>"$work/n$i/agent.log" & pids+=($!)
done
# The anchor: Prometheus federating the same series, with and without the same rules.
rules=$work/data/alerting/rules/builtin.yml
printf '%s' "${engine_auth#*:}" > "$work/engine-pw"
for which in rules none; do
  mkdir -p "$work/prom-$which"
  {
    echo "global: {scrape_interval: 15s, evaluation_interval: 30s}"
    [ "$which" = rules ] && echo "rule_files: ['$rules']"
    echo "scrape_configs:"
    echo "- job_name: federate"
    echo "  honor_labels: true"
    echo "  metrics_path: /federate"
    echo "  params: {'match[]': ['{node_name=~\"fleet-.*\"}']}"
    echo "  basic_auth: {username: perch, password_file: '$work/engine-pw'}"
    echo "  static_configs: [{targets: ['$engine_addr']}]"
  } > "$work/prom-$which/prometheus.yml"
done
prometheus --config.file="$work/prom-rules/prometheus.yml" --storage.tsdb.path="$work/prom-rules/data" \
  --web.listen-address=127.0.0.1:$PROM_PORT >"$work/prom-rules.log" 2>&1 & prom_rules=$!; pids+=($prom_rules)
prometheus --config.file="$work/prom-none/prometheus.yml" --storage.tsdb.path="$work/prom-none/data" \
  --web.listen-address=127.0.0.1:$((PROM_PORT + 1)) >"$work/prom-none.log" 2>&1 & prom_none=$!; pids+=($prom_none)
sleep 60  # agents enrolled and pushing, both Prometheus servers past their first scrapes
v0=$(cpu_s "$vmalert_pid"); a0=$(cpu_s "$am_pid"); r0=$(cpu_s "$prom_rules"); n0=$(cpu_s "$prom_none")
sleep "$DURATION"
v1=$(cpu_s "$vmalert_pid"); a1=$(cpu_s "$am_pid"); r1=$(cpu_s "$prom_rules"); n1=$(cpu_s "$prom_none")
series=$(curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=count({node_name=~"fleet-.*"})' | grep -o '"[0-9]*"\]' | tr -d '"]' || true)
rule_count=$(grep -c -- '- alert:' "$rules")
eval_s=$(curl -s "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode 'query=sum(prometheus_rule_group_last_duration_seconds)' | grep -o '"[0-9.e-]*"\]' | tr -d '"]' || true)
{
  echo "load nodes=$NODES series=${series:-?} builtin_alert_rules=$rule_count window_s=$DURATION"
  echo "vmalert cpu_s=$(awk -v a="$v0" -v b="$v1" 'BEGIN{print b-a}') rss_kb=$(rss_kb "$vmalert_pid")"
  echo "alertmanager cpu_s=$(awk -v a="$a0" -v b="$a1" 'BEGIN{print b-a}') rss_kb=$(rss_kb "$am_pid")"
  echo "prometheus_with_rules cpu_s=$(awk -v a="$r0" -v b="$r1" 'BEGIN{print b-a}') rss_kb=$(rss_kb "$prom_rules") rule_groups_last_eval_s=${eval_s:-?}"
  echo "prometheus_without_rules cpu_s=$(awk -v a="$n0" -v b="$n1" 'BEGIN{print b-a}') rss_kb=$(rss_kb "$prom_none")"
  echo "agents_with_errors=$(grep -l '"level":"ERROR"' "$work"/n*/agent.log 2>/dev/null | wc -l)"
} | tee -a "$out"
echo "results in $out"
