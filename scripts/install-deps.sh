#!/usr/bin/env bash
# Installs every Debian package taskmill needs to build, test and run.
# Idempotent and non-interactive: packages already present are skipped.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev liblmdb-dev lmdb-utils libraft-dev libuv1-dev
  libspdlog-dev libboost-dev libboost-program-options-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev libcctz-dev libabsl-dev tzdata
  python3 python3-zmq python3-msgpack
  python3-prometheus-client chromium chromium-driver python3-selenium
  python3-pytest python3-pip python3-setuptools
  curl
  prometheus
  clang-14 clang-tidy-14 clang-tools-14 clang-format-14
  cargo rustc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
