#!/usr/bin/env bash
# Builds and runs the conv microbenchmark natively. Usage: bench/run.sh [seconds per measurement]
set -euo pipefail

kernels_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_driver="${kernels_dir}/scripts/build-driver.sh"
out="${kernels_dir}/build/bench"
mkdir -p "${out}"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "bench/run.sh: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
"${build_driver}" g++ "${out}/bench" bench/bench.cc "${arch}"
"${out}/bench" "${1:-0.3}"
