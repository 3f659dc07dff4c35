#!/usr/bin/env bash
# Database services benchmark (issue 19): perch-admin's agent watching one MariaDB and one
# PostgreSQL service at 15 s (it runs Debian's prometheus-mysqld-exporter and
# prometheus-postgres-exporter as its children, and collects the node itself), side by side
# with PMM's client stack doing the same job: vmagent scraping its own copies of the same two
# exporters and a node_exporter, remote-writing to the same Perch server. Resident memory and
# CPU (% of one core) of each side over the same window. Both databases are started here in
# temporary directories; loopback only.
#
#   bash bench/databases.sh              # SECONDS_TO_RUN=300 INTERVAL=15s
set -euo pipefail
SECONDS_TO_RUN=${SECONDS_TO_RUN:-300}
INTERVAL=${INTERVAL:-15s}
PORT=${PORT:-19461}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics vmagent prometheus-node-exporter prometheus-mysqld-exporter prometheus-postgres-exporter mariadb-install-db psql; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install -y victoria-metrics prometheus-node-exporter prometheus-mysqld-exporter prometheus-postgres-exporter mariadb-server postgresql)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-admin
work=$(mktemp -d /tmp/perch-db-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/pg/data/postmaster.pid" ] && kill "$(head -1 "$work/pg/data/postmaster.pid")" 2>/dev/null || true
  kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT
. "$root/bench/lib.sh"
start_perch

# MariaDB, its monitoring user as the README gives it.
start_mariadb 19462

# PostgreSQL (as the postgres user when run as root), its monitoring user with pg_monitor.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
mkdir -p "$work/pg"; echo pg-super-pw > "$work/pg/pw"
run_pg=(); [ "$(id -u)" = 0 ] && { chown -R postgres "$work/pg"; run_pg=(runuser -u postgres --); }
"${run_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -A scram-sha-256 -U postgres --pwfile="$work/pg/pw" --no-sync >/dev/null
"${run_pg[@]}" "$pg_bin/postgres" -D "$work/pg/data" -p 19463 -c listen_addresses=127.0.0.1 -c unix_socket_directories="$work/pg" >"$work/pg.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do PGPASSWORD=pg-super-pw psql -h 127.0.0.1 -p 19463 -U postgres -c 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
PGPASSWORD=pg-super-pw psql -h 127.0.0.1 -p 19463 -U postgres -qc "CREATE ROLE perch LOGIN PASSWORD 'bench-pg-pw'; GRANT pg_monitor TO perch;"

# Perch's side: one agent, two services.
mkdir -p "$work/agent"
enroll_agent "$work/agent" bench-db "$INTERVAL"
admin=("$root/target/release/perch-admin" --config "$work/agent/agent.toml")
PERCH_DB_PASSWORD=bench-mysql-pw "${admin[@]}" add mysql bench-mysql 127.0.0.1:19462 --username perch >/dev/null
PERCH_DB_PASSWORD=bench-pg-pw "${admin[@]}" add postgresql bench-pg 127.0.0.1:19463 --username perch >/dev/null
"${admin[@]}" agent 2>"$work/agent.log" & pids+=($!); agent=$!

# PMM's side: the same exporters, node_exporter, vmagent.
printf '[client]\nuser=`perch`\npassword=`bench-mysql-pw`\nhost=127.0.0.1\nport=19462\n' > "$work/vm.my.cnf"; chmod 600 "$work/vm.my.cnf"
prometheus-mysqld-exporter --config.my-cnf="$work/vm.my.cnf" --web.listen-address=127.0.0.1:19464 >/dev/null 2>&1 & pids+=($!); my_exp=$!
DATA_SOURCE_NAME="postgresql://perch:bench-pg-pw@127.0.0.1:19463/postgres?sslmode=disable" \
  prometheus-postgres-exporter --web.listen-address=127.0.0.1:19465 >/dev/null 2>&1 & pids+=($!); pg_exp=$!
prometheus-node-exporter --web.listen-address=127.0.0.1:19466 >/dev/null 2>&1 & pids+=($!); node_exp=$!
token=$(api_token editor); echo -n "$token" > "$work/vmagent-token"
cat > "$work/scrape.yml" <<YML
global:
  scrape_interval: $INTERVAL
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["127.0.0.1:19466"]}]
  - job_name: mysql
    static_configs: [{targets: ["127.0.0.1:19464"]}]
  - job_name: postgresql
    static_configs: [{targets: ["127.0.0.1:19465"]}]
YML
vmagent -promscrape.config="$work/scrape.yml" -remoteWrite.url="https://localhost:$PORT/v1/metrics/write" \
  -remoteWrite.tlsCAFile="$ca" -remoteWrite.bearerTokenFile="$work/vmagent-token" \
  -remoteWrite.tmpDataPath="$work/vmagent-data" -httpListenAddr=127.0.0.1:19467 -loggerLevel=ERROR \
  >"$work/vmagent.log" 2>&1 & pids+=($!); vmagent=$!

# Warm up two intervals (the agent starts its exporters), then measure over the window.
sleep $(( 2 * ${INTERVAL%s} ))
children=$(sed -n '/exporter_pids/,/]/p' "$work/agent/agent-state.json" | grep -o '[0-9]\+' | tr '\n' ' ')
[ -n "$children" ] || { echo "bench: the agent reports no exporters" >&2; cat "$work/agent.log" >&2; exit 1; }
sum_cpu() { local t=0; for p in "$@"; do t=$(awk -v a="$t" -v b="$(cpu_s "$p")" 'BEGIN {printf "%.2f", a+b}'); done; echo "$t"; }
sum_rss() { local t=0; for p in "$@"; do t=$((t + $(rss_kb "$p"))); done; echo "$t"; }
a0=$(cpu_s $agent); c0=$(sum_cpu $children); v0=$(cpu_s $vmagent); e0=$(sum_cpu $my_exp $pg_exp $node_exp)
sleep "$SECONDS_TO_RUN"
a1=$(cpu_s $agent); c1=$(sum_cpu $children); v1=$(cpu_s $vmagent); e1=$(sum_cpu $my_exp $pg_exp $node_exp)
pct() { awk -v a="$1" -v b="$2" -v t="$SECONDS_TO_RUN" 'BEGIN {printf "%.3f", (b-a)/t*100}'; }
count() { curl -s -u "$engine_auth" "http://$engine_addr/api/v1/query" --data-urlencode "query=$1" | grep -o '"[0-9]*"\]' | tr -d '"]'; }
mkdir -p "$root/bench/results"
out=$root/bench/results/databases-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "# database services benchmark $(date -u +%FT%TZ); $(nproc) cores; interval $INTERVAL; window ${SECONDS_TO_RUN}s; $("${admin[@]}" --version); vmagent (victoria-metrics $(dpkg-query -W -f "\${Version}" victoria-metrics)); mysqld_exporter $(dpkg-query -W -f "\${Version}" prometheus-mysqld-exporter); postgres_exporter $(dpkg-query -W -f "\${Version}" prometheus-postgres-exporter)"
  echo "perch-admin agent: rss_kb=$(rss_kb $agent) peak_kb=$(hwm_kb $agent) cpu_pct_of_one_core=$(pct $a0 $a1) series=$(count 'count({node_name="bench-db"})')"
  echo "its two exporters: rss_kb=$(sum_rss $children) cpu_pct=$(pct $c0 $c1)"
  echo "vmagent: rss_kb=$(rss_kb $vmagent) peak_kb=$(hwm_kb $vmagent) cpu_pct=$(pct $v0 $v1) series=$(count 'count({job=~"node|mysql|postgresql",node_name=""})')"
  echo "its three exporters (mysqld, postgres, node): rss_kb=$(sum_rss $my_exp $pg_exp $node_exp) cpu_pct=$(pct $e0 $e1)"
} | tee "$out"
echo "results in $out"
