#!/usr/bin/env bash
# Backup benchmark (issue 21): with NODES nodes x HOURS of history in the bundled engine (as
# bench/dashboard.sh makes it), RUNS rounds of, side by side:
#   perch    perch-server backup (running server, encrypted with age) and restore
#   vmbackup Debian's vmbackup of an engine snapshot to a folder (unencrypted), and vmrestore
#   tar      tar | gzip of the stopped data directory, and tar -x
# Wall time, the archive's size, and the server's and engine's CPU for Perch's backup. Medians
# over the rounds. Loopback only; bounded.
#
#   bash bench/backup.sh            # NODES=50 HOURS=24 RUNS=3
set -euo pipefail
NODES=${NODES:-50}
HOURS=${HOURS:-24}
RUNS=${RUNS:-3}
PORT=${PORT:-19463}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in victoria-metrics vmbackup vmrestore age-keygen; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing (apt-get install victoria-metrics age)" >&2; exit 1; }
done
cargo build --release --quiet -p perch-server -p perch-bench
work=$(mktemp -d /tmp/perch-backup-bench.XXXXXX)
cleanup() { kill "${perch_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/lib.sh"
start_perch
server=$root/target/release/perch-server
mkdir -p "$root/bench/results"
out=$root/bench/results/backup-$(date -u +%Y%m%dT%H%M%SZ).txt
echo "# backup benchmark $(date -u +%FT%TZ); $(nproc) cores; $NODES nodes x ${HOURS} h; $("$server" --version); $(victoria-metrics --version 2>/dev/null | head -1)" | tee "$out"

backfill_nodes "$NODES" "$HOURS" "$out"
curl -sf -u "$engine_auth" "http://$engine_addr/internal/force_flush" >/dev/null
echo "engine data: $(du -sb "$work/data/victoriametrics" | cut -f1) bytes" | tee -a "$out"

age-keygen -o "$work/key.txt" 2>/dev/null
recipient=$(sed -n 's/^# public key: //p' "$work/key.txt")
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }

for run in $(seq "$RUNS"); do
  # Perch: the running server, encrypted.
  rm -f "$work/perch.age"
  c0=$(cpu_ticks "$perch_pid" "$engine_pid"); t=$(now)
  "$server" backup --data-dir "$work/data" --to "$work/perch.age" --recipient "$recipient" 2>/dev/null
  echo "perch_backup $(since "$t") $(stat -c %s "$work/perch.age") $(( $(cpu_ticks "$perch_pid" "$engine_pid") - c0 ))" >> "$work/raw"
  rm -rf "$work/restored"; t=$(now)
  "$server" restore --from "$work/perch.age" --identity "$work/key.txt" --data-dir "$work/restored" 2>/dev/null
  echo "perch_restore $(since "$t") 0 0" >> "$work/raw"
  # vmbackup: a snapshot of the same engine, copied unencrypted to a folder.
  rm -rf "$work/vmb" "$work/vmr"; t=$(now)
  snap=$(curl -sf -u "$engine_auth" "http://$engine_addr/snapshot/create" | sed 's/.*"snapshot":"\([^"]*\)".*/\1/')
  vmbackup -loggerLevel=ERROR -storageDataPath="$work/data/victoriametrics" -snapshotName="$snap" -dst="fs://$work/vmb" >/dev/null 2>&1
  curl -sf -u "$engine_auth" "http://$engine_addr/snapshot/delete?snapshot=$snap" >/dev/null
  echo "vmbackup $(since "$t") $(du -sb "$work/vmb" | cut -f1) 0" >> "$work/raw"
  t=$(now)
  vmrestore -loggerLevel=ERROR -src="fs://$work/vmb" -storageDataPath="$work/vmr" >/dev/null 2>&1
  echo "vmrestore $(since "$t") 0 0" >> "$work/raw"
done

# tar | gzip needs the server stopped: last, and the server's downtime is the figure.
kill "$perch_pid"; wait "$perch_pid" 2>/dev/null || true
for run in $(seq "$RUNS"); do
  t=$(now)
  tar -C "$work/data" -czf "$work/data.tgz" .
  echo "tar_gzip $(since "$t") $(stat -c %s "$work/data.tgz") 0" >> "$work/raw"
  rm -rf "$work/untar"; mkdir "$work/untar"; t=$(now)
  tar -C "$work/untar" -xzf "$work/data.tgz"
  echo "tar_extract $(since "$t") 0 0" >> "$work/raw"
done

hz=$(getconf CLK_TCK)
for what in perch_backup vmbackup tar_gzip perch_restore vmrestore tar_extract; do
  s=$(awk -v w=$what '$1==w {print $2}' "$work/raw" | median)
  b=$(awk -v w=$what '$1==w {print $3}' "$work/raw" | median)
  c=$(awk -v w=$what '$1==w {print $4}' "$work/raw" | median)
  echo "$what seconds_p50=$s bytes=$b server_and_engine_cpu_s=$(awk -v c="$c" -v hz="$hz" 'BEGIN {printf "%.2f", c / hz}') runs=$RUNS" | tee -a "$out"
done
echo "results in $out"
