#!/usr/bin/env bash
# Login benchmark (issue 3): login latency at the argon2 parameters in use, and /v1/readyz
# latency while 200 clients send wrong passwords, once from one address (throttled) and
# once from a new loopback address per attempt (never throttled: every attempt costs a full
# argon2 check). Traffic stays on 127.0.0.0/8; every loop ends by itself.
#
#   bash bench/login.sh              # SECONDS_PER_RUN=20 CLIENTS=200
set -euo pipefail
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
CLIENTS=${CLIENTS:-200}
PORT=${PORT:-19446}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --release --quiet -p perch-server -p perch-bench
perch=$root/target/release/perch-server
bench=$root/target/release/perch-bench
work=$(mktemp -d /tmp/perch-login-bench.XXXXXX)
mkdir -p "$root/bench/results"
out=$root/bench/results/login-$(date -u +%Y%m%dT%H%M%SZ).txt
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
echo "violet-tractor-lantern-9" > "$work/pw"
"$perch" --data-dir "$work" --listen 127.0.0.1:$PORT --http-listen off --admin-password-file "$work/pw" --require-2fa off >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$work/nginx/ca-certs.pem" ] && curl -sf --cacert "$work/nginx/ca-certs.pem" https://localhost:$PORT/v1/readyz >/dev/null && break; sleep 0.05; done
ca=$work/nginx/ca-certs.pem
{
  echo "# login benchmark $(date -u +%FT%TZ); $(nproc) cores; $("$perch" --version)"
  echo "login $("$bench" login --addr 127.0.0.1:$PORT --ca "$ca" --user admin --password-file "$work/pw" --n 100)"
  echo "flood_one_address $("$bench" flood --addr 127.0.0.1:$PORT --ca "$ca" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN")"
  echo "flood_rotating_addresses $("$bench" flood --addr 127.0.0.1:$PORT --ca "$ca" --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --rotate)"
  echo "server_cpu_cores=$(nproc) peak_rss_kb=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
} | tee "$out"
echo "results in $out"
