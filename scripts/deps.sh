#!/usr/bin/env bash
# Installs the Debian packages scalecast needs that are missing.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh --test   also what the test suite uses (Docker engine, busybox, clang, ...)
set -euo pipefail

pkgs=(build-essential cmake pkg-config libevent-dev libsqlite3-dev libjansson-dev libgsl-dev
      libcurl4-openssl-dev libinih-dev libssl-dev zlib1g-dev libjs-dygraphs curl ca-certificates)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(clang-format git python3 sqlite3 docker.io busybox-static iptables clang libclang-rt-14-dev prometheus
        chromium fonts-dejavu-core jq openssl iproute2 procps util-linux)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps: all present"
fi
