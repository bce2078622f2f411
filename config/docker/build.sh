#!/bin/bash
# Builds the container images scalecast/scalecastd:VERSION and
# scalecast/agent:VERSION from this source tree and prints their sizes.
#
#   config/docker/build.sh [--build-image IMAGE] [--tag VERSION]
#
# The build stage needs a Debian 12 image (BUILD_IMAGE, default
# debian:bookworm). Where it is neither present nor pullable (no registry
# reachable), this script makes one: a Debian 12 root file system with the
# build dependencies, by mmdebstrap (or debootstrap) from the Debian
# mirror, loaded with `docker import` as scalecast/build-base:bookworm. The
# final images are FROM scratch and need no base at all.
#
# The Docker engine: the one `docker` reaches; if none answers and this
# tree has tests/docker/engine.sh, that starts one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
version=$(sed -n 's/^project(scalecast VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
build_image=${BUILD_IMAGE:-debian:bookworm}
import_tag=scalecast/build-base:bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

while [ $# -gt 0 ]; do
    case $1 in
    --build-image) build_image=$2; shift 2 ;;
    --tag) version=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'build.sh: %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
    if [ -x "$root/tests/docker/engine.sh" ]; then
        say "no Docker engine answers; starting one with tests/docker/engine.sh"
        "$root/tests/docker/engine.sh" >&2
    else
        say "no Docker engine answers (docker info failed)"
        exit 1
    fi
fi

# The same build dependencies as the Dockerfiles' apt-get line.
build_deps=build-essential,cmake,pkg-config,libevent-dev,libsqlite3-dev,libjansson-dev,libgsl-dev,libcurl4-openssl-dev,libinih-dev,libssl-dev

make_build_base() {
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    if command -v mmdebstrap >/dev/null; then
        say "making $import_tag with mmdebstrap from $mirror (a few minutes)"
        mmdebstrap --variant=apt --include="$build_deps" bookworm "$tmp/rootfs.tar" "$mirror" >&2
    elif command -v debootstrap >/dev/null; then
        say "making $import_tag with debootstrap from $mirror (a few minutes)"
        debootstrap --variant=minbase --include="$build_deps" bookworm "$tmp/rootfs" "$mirror" >&2
        rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb
        tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
    else
        say "no registry and neither mmdebstrap nor debootstrap: apt-get install -y mmdebstrap"
        return 1
    fi
    docker import -c 'CMD ["bash"]' -m "Debian 12 with scalecast's build dependencies" \
        "$tmp/rootfs.tar" "$import_tag" >/dev/null
}

if docker image inspect "$build_image" >/dev/null 2>&1; then
    say "build stage: $build_image (present)"
elif timeout 60 docker pull "$build_image" >/dev/null 2>&1; then
    say "build stage: $build_image (pulled)"
else
    say "cannot pull $build_image (no registry reachable?)"
    build_image=$import_tag
    if docker image inspect "$build_image" >/dev/null 2>&1; then
        say "build stage: $build_image (imported earlier)"
    else
        make_build_base
        say "build stage: $build_image (imported now)"
    fi
fi

# A clean context: the tree's files as git sees them (tracked, and new
# ones not ignored), so build directories and databases stay out.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# shellcheck disable=SC2016 # the inner sh expands "$f"
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf -) | tar -C "$ctx" -xf -

for part in server:scalecastd agent:agent; do
    file=Dockerfile.${part%%:*}
    tag=scalecast/${part#*:}:$version
    say "docker build -f config/docker/$file -t $tag"
    DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -q --build-arg "BUILD_IMAGE=$build_image" \
        -f "$ctx/config/docker/$file" -t "$tag" "$ctx" >/dev/null
    docker tag "$tag" "scalecast/${part#*:}:latest"
done

printf '%-32s %12s\n' IMAGE SIZE
for image in scalecast/scalecastd:$version scalecast/agent:$version; do
    bytes=$(docker image inspect -f '{{.Size}}' "$image")
    awk -v i="$image" -v b="$bytes" 'BEGIN { printf "%-32s %9.1f MB  (%d bytes)\n", i, b / 1e6, b }'
done
