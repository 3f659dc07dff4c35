#!/usr/bin/env bash
# Image figures (issue 7): size of perch/server, time from `docker run` to Docker's
# "healthy" (median of RUNS fresh volumes), and memory of the whole container idle (after
# IDLE seconds, from `docker stats`). Builds the image first. Loopback only.
#
#   bash bench/image.sh          # RUNS=5 IDLE=60
set -euo pipefail
RUNS=${RUNS:-5}
IDLE=${IDLE:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash docker/build.sh >/dev/null
name=perch-bench-image-$$
cleanup() { docker rm -f -v "$name" >/dev/null 2>&1 || true; docker volume rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
size=$(docker image inspect perch/server:latest --format '{{.Size}}')
times=()
for i in $(seq "$RUNS"); do
  cleanup
  t0=$(date +%s%N)
  docker run -d --name "$name" -p 127.0.0.1::443 -v "$name:/srv" perch/server:latest >/dev/null
  for _ in $(seq 600); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" = healthy ] && break
    sleep 0.02
  done
  t1=$(date +%s%N)
  times+=("$(( (t1 - t0) / 1000000 ))")
done
sleep "$IDLE"
mem=$(docker stats --no-stream --format '{{.MemUsage}}' "$name" | cut -d/ -f1 | tr -d ' ')
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
mkdir -p bench/results
out=bench/results/image-$(date -u +%Y%m%dT%H%M%SZ).txt
{
  echo "# image benchmark $(date -u +%FT%TZ); $(nproc) cores; docker $(docker version --format '{{.Server.Version}}')"
  echo "image_size_mb=$(awk -v s="$size" 'BEGIN {printf "%.1f", s/1000000}') healthy_ms_median=$median healthy_ms_runs=[${times[*]}] idle_memory_after_${IDLE}s=$mem"
} | tee "$out"
