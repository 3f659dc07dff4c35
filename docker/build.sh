#!/usr/bin/env bash
# Builds the Perch appliance image, perch/server:<version> and :latest, on a machine with
# cargo and Docker: static perch-server and perch-admin (glibc, +crt-static, explicit
# target), plus Debian's victoria-metrics, vmalert (same package) and prometheus-alertmanager
# binaries and exactly the shared libraries `ldd` lists for them (with Alertmanager's
# notification templates), CA roots and a passwd entry, into a FROM scratch image. Nothing is pulled.
#
#   docker/build.sh            # builds and tags perch/server:<version> and perch/server:latest
#   IMAGE=perch/server docker/build.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
IMAGE=${IMAGE:-perch/server}
TARGET=${TARGET:-x86_64-unknown-linux-gnu}
UID_GID=10001

need() { command -v "$1" >/dev/null 2>&1; }
if ! need victoria-metrics || ! need vmalert || ! need prometheus-alertmanager || [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
  if need apt-get && [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends victoria-metrics prometheus-alertmanager ca-certificates
  else
    echo "build.sh: needs Debian's victoria-metrics, prometheus-alertmanager and ca-certificates: apt-get install victoria-metrics prometheus-alertmanager ca-certificates" >&2
    exit 1
  fi
fi
need docker || { echo "build.sh: needs docker" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
echo "== building perch-server and perch-admin $version (static, $TARGET)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --target "$TARGET" -p perch-server -p perch-admin
bin=$root/target/$TARGET/release

ctx=$(mktemp -d /tmp/perch-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
rootfs=$ctx/rootfs
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/bin" "$rootfs/etc/ssl/certs" "$ctx/srv"
install -m 0755 "$bin/perch-server" "$bin/perch-admin" "$rootfs/usr/local/bin/"
for b in perch-server perch-admin; do
  if ldd "$rootfs/usr/local/bin/$b" 2>&1 | grep -q '=>'; then
    echo "build.sh: $b is not static:" >&2; ldd "$rootfs/usr/local/bin/$b" >&2; exit 1
  fi
done
for name in victoria-metrics vmalert prometheus-alertmanager; do
  b=$(command -v "$name")
  install -m 0755 "$b" "$rootfs/usr/bin/$name"
  # Exactly the libraries ldd lists (resolved paths), and the dynamic loader, at their paths.
  { ldd "$b" 2>/dev/null || true; } | awk '/=> \// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}' | while read -r lib; do
    real=$(readlink -f "$lib")
    mkdir -p "$rootfs$(dirname "$lib")"
    cp "$real" "$rootfs$lib"
  done
done
# Debian's Alertmanager reads its notification templates from here.
mkdir -p "$rootfs/usr/share/prometheus/alertmanager"
cp /usr/share/prometheus/alertmanager/default.tmpl /usr/share/prometheus/alertmanager/email.tmpl "$rootfs/usr/share/prometheus/alertmanager/"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nperch:x:%s:0:perch:/srv:/sbin/nologin\n' $UID_GID > "$rootfs/etc/passwd"
printf 'root:x:0:perch\n' > "$rootfs/etc/group"
cp docker/Dockerfile "$ctx/Dockerfile"
tar -C "$ctx" --owner=0 --group=0 --numeric-owner -cf "$ctx/context.tar" Dockerfile rootfs srv
echo "== docker build $IMAGE:$version"
docker build --quiet --build-arg VERSION="$version" -t "$IMAGE:$version" -t "$IMAGE:latest" - < "$ctx/context.tar"
docker image inspect "$IMAGE:$version" --format '{{.Size}}' | awk -v i="$IMAGE:$version" '{printf "built %s: %.1f MB\n", i, $1/1000000}'
