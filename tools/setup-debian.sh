#!/usr/bin/env bash
# Installs the Debian packages r2c needs that are missing (build: compiler, CMake, Catch2, Eigen, stb,
# nlohmann-json; with --test also PyTorch, the independent oracle of the test suite, and clang with its
# libFuzzer and sanitizer runtimes for the fuzz runs). The CUDA toolkit is not a Debian package: without nvcc
# the build is CPU only.
set -euo pipefail

packages=(g++ make cmake catch2 libeigen3-dev libstb-dev nlohmann-json3-dev)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(python3 python3-numpy python3-torch clang libclang-rt-dev)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup-debian: installing ${missing[*]}"
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
