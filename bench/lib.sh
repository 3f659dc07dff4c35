# Shared by the benchmark scripts: start a perch-server with an admin from a password file,
# log in, make tokens, enroll perch-admin agents. Loopback only; every wait is bounded.
# Expects $root (the checkout), $work (a scratch dir) and $PORT.

PASSWORD="violet-tractor-lantern-9"

start_perch() { # start_perch -> sets $perch_pid, $ca, $engine_addr, $engine_pid, $engine_auth (user:password) (PERCH_WRAP: a command prefix, as taskset; PERCH_ARGS: more flags)
  echo "$PASSWORD" > "$work/pw"
  # shellcheck disable=SC2086 # PERCH_ARGS: extra flags, split on spaces
  ${PERCH_WRAP:-} "${PERCH_BIN:-$root/target/release/perch-server}" --data-dir "$work/data" --listen 127.0.0.1:$PORT --http-listen off \
    --admin-password-file "$work/pw" --require-2fa off ${PERCH_ARGS:-} >"$work/server.log" 2>&1 &
  perch_pid=$!
  ca=$work/data/nginx/ca-certs.pem
  for _ in $(seq 400); do
    [ -s "$ca" ] && curl -sf --cacert "$ca" https://localhost:$PORT/v1/readyz >/dev/null && break
    sleep 0.05
  done
  curl -sf --cacert "$ca" https://localhost:$PORT/v1/readyz >/dev/null || { echo "bench: perch-server did not get ready" >&2; exit 1; }
  engine_addr=$(grep '"message":"metrics engine ready"' "$work/server.log" | grep -o '"listen":"http://[0-9.:]*"' | tail -1 | sed 's/.*http:\/\///; s/"//')
  # The bundled engine's credential is made at each start and given to it in its environment.
  engine_pid=$(pgrep -P "$perch_pid" -f victoria-metrics || true)
  engine_auth="perch:$(tr '\0' '\n' < /proc/${engine_pid:-0}/environ 2>/dev/null | sed -n 's/^PERCH_ENGINE_httpAuth_password=//p')"
  csrf=$(curl -s --cacert "$ca" -c "$work/jar" -H 'content-type: application/json' \
    -d "{\"name\":\"admin\",\"password\":\"$PASSWORD\"}" https://localhost:$PORT/v1/login | sed 's/.*"csrf":"\([0-9a-f]*\)".*/\1/')
}

admin_post() { # admin_post PATH JSON
  curl -s --cacert "$ca" -b "$work/jar" -H "x-csrf-token: $csrf" -H "origin: https://localhost:$PORT" \
    -H 'content-type: application/json' -d "$2" "https://localhost:$PORT$1"
}

backfill_nodes() { # backfill_nodes NODES HOURS OUT -> enrolls web-01.., writes HOURS of their history into the engine; sets $nodes (id:name,...)
  nodes=""
  for i in $(seq -w 1 "$1"); do
    id=$(admin_post /v1/nodes "{\"name\":\"web-$i\"}" | sed 's/.*"node":{"id":\([0-9]*\).*/\1/')
    nodes="$nodes$id:web-$i,"
  done
  "$root/target/release/perch-bench" backfill --engine "$engine_addr" \
    --engine-authorization "Basic $(printf %s "$engine_auth" | base64 -w0)" --nodes "$nodes" --hours "$2" | tee -a "$3"
  # The engine makes recent writes searchable within seconds; ask until every node answers.
  for _ in $(seq 60); do
    curl -s --cacert "$ca" -b "$work/jar" "https://localhost:$PORT/prometheus/api/v1/query?query=count(node_load1)" | grep -q "\"$1\"" && break
    sleep 1
  done
}

api_token() { # api_token ROLE -> prints the secret
  admin_post /v1/tokens "{\"name\":\"bench-$1-$RANDOM\",\"role\":\"$1\"}" | sed 's/.*"secret":"\([^"]*\)".*/\1/'
}

enroll_agent() { # enroll_agent DIR NAME INTERVAL -> writes DIR/agent.toml
  local token
  token=$(admin_post /v1/enroll-tokens '{}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
  "$root/target/release/perch-admin" --config "$1/agent.toml" config --server localhost:$PORT \
    --server-insecure-ssl --enroll-token "$token" --node-name "$2" --interval "$3" >/dev/null 2>&1
}

start_mariadb() { # start_mariadb PORT [mariadbd options...] -> a MariaDB in $work/my (socket $work/my.sock), its pid added to $pids, and the monitoring user perch@127.0.0.1 (password bench-mysql-pw) as the README gives it
  local port=$1; shift
  local as_root=(); [ "$(id -u)" = 0 ] && as_root=(--user=root)
  mariadb-install-db --no-defaults --datadir="$work/my" --auth-root-authentication-method=socket --skip-test-db "${as_root[@]}" >/dev/null
  /usr/sbin/mariadbd --no-defaults --datadir="$work/my" --socket="$work/my.sock" --port="$port" --bind-address=127.0.0.1 \
    --skip-log-bin --innodb-buffer-pool-size=64M "${as_root[@]}" --log-error="$work/mariadbd.log" "$@" & pids+=($!)
  for _ in $(seq 100); do mariadb --no-defaults -S "$work/my.sock" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb --no-defaults -S "$work/my.sock" -uroot -e "CREATE USER 'perch'@'127.0.0.1' IDENTIFIED BY 'bench-mysql-pw' WITH MAX_USER_CONNECTIONS 10; GRANT SELECT, PROCESS, SLAVE MONITOR ON *.* TO 'perch'@'127.0.0.1';"
}

rss_kb() { awk '/VmRSS/ {print $2}' /proc/$1/status 2>/dev/null || echo 0; }
hwm_kb() { awk '/VmHWM/ {print $2}' /proc/$1/status 2>/dev/null || echo 0; }
# CPU seconds (user+system) a process has used, from /proc/PID/stat.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/hz}' /proc/$1/stat 2>/dev/null || echo 0; }

# utime+stime of the given pids, in clock ticks.
cpu_ticks() { local total=0; for p in "$@"; do total=$((total + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $total; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# wrk_stats OUT "PIDS" URL [wrk args]: one wrk run ($CONNS connections for $DURATION), its report
# appended to OUT. Prints "rps p99_ms cpu_us_per_request" (the CPU of PIDS per request), or
# nothing (and the report on stderr) when any answer was not 2xx.
wrk_stats() {
  local out=$1 pids=$2 url=$3; shift 3
  local text before after rps p99 n cpu
  before=$(cpu_ticks $pids)
  text=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
  after=$(cpu_ticks $pids)
  echo "$text" >> "$out"
  if grep -q "Non-2xx" <<<"$text"; then echo "bench: non-2xx answers from $url:" >&2; echo "$text" >&2; return; fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$text")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$text")
  n=$(awk '/requests in/ {print $1}' <<<"$text")
  cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
  echo "$rps $p99 $cpu"
}
