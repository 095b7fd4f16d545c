#!/usr/bin/env bash
# Cross-compiles test/kernel_test.cc for arm64 and runs it under qemu as a Cortex-A76 (NEON +
# dotprod) and a Cortex-A72 (NEON only); then builds and runs the same driver natively (and, on
# x86, under qemu as CPUs without AVX-512 and without AVX2).
# Usage: run-arm64.sh [iterations]. Exits non-zero on any mismatch; 77 if the cross compiler or
# qemu is missing (after still running the native check).
set -euo pipefail

kernels_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_driver="${kernels_dir}/scripts/build-driver.sh"
out="${kernels_dir}/build/test"
iters="${1:-300}"
mkdir -p "${out}"

status=0
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  "${build_driver}" aarch64-linux-gnu-g++ "${out}/kernel_test_arm64" test/kernel_test.cc arm64 -static
  for cpu in cortex-a76 cortex-a72; do
    echo "== arm64 under qemu -cpu ${cpu}"
    qemu-aarch64 -cpu "${cpu}" "${out}/kernel_test_arm64" "${iters}" || status=1
  done
else
  echo "run-arm64.sh: aarch64-linux-gnu-g++ or qemu-aarch64 not installed; skipping arm64 runs" >&2
  status=77
fi

case "$(uname -m)" in
  x86_64) native_arch=x64 ;;
  aarch64) native_arch=arm64 ;;
  *) native_arch="" ;;
esac
if [[ -n "${native_arch}" ]]; then
  "${build_driver}" g++ "${out}/kernel_test_native" test/kernel_test.cc "${native_arch}"
  echo "== native $(uname -m)"
  "${out}/kernel_test_native" "${iters}" || status=1
  if [[ "${native_arch}" == x64 ]] && command -v qemu-x86_64 >/dev/null; then
    # Older CPUs must fall back without ever executing an instruction they lack.
    echo "== x86_64 under qemu -cpu Haswell (AVX2, no AVX-512)"
    # (qemu warns about CPUID bits it cannot emulate; they do not matter here.)
    qemu-x86_64 -cpu Haswell "${out}/kernel_test_native" 30 2> >(grep -v "TCG doesn't support" >&2) || status=1
    echo "== x86_64 under qemu -cpu Nehalem (no AVX2)"
    qemu-x86_64 -cpu Nehalem "${out}/kernel_test_native" 30 || status=1
  fi
fi
if [[ "${status}" == 77 ]]; then exit 77; fi
exit "${status}"
