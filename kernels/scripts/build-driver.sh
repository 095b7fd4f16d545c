#!/usr/bin/env bash
# Compiles a standalone (no Node) C++ driver the way binding.gyp compiles the addon: the core at
# the baseline ISA, each ISA source with its own flags.
# Usage: build-driver.sh CXX OUTPUT MAIN_SOURCE ARCH(x64|arm64) [LINK_FLAG ...]
set -euo pipefail

kernels_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cxx="$1" exe="$2" main="$3" arch="$4"
shift 4
flags=(-std=c++17 -O3 -ffp-contract=off -Wall -Wextra -I"${kernels_dir}/include" -I"${kernels_dir}/src")
core=(src/common/conv.cc src/common/dispatch.cc src/common/gate.cc src/common/network.cc src/common/ops.cc
  src/common/thread_pool.cc src/ref/ref.cc)
case "${arch}" in
  # GCC 12's own avx512fintrin.h trips -Wmaybe-uninitialized (_mm512_undefined_*).
  x64) isa=("src/x86/avx2.cc:-mavx2 -mfma" "src/x86/avx512_vnni.cc:-mavx512f -mavx512vnni -Wno-maybe-uninitialized") ;;
  # Pre-RA scheduling makes GCC spill the NEON accumulators (see binding.gyp).
  arm64) isa=("src/arm/neon.cc:-march=armv8-a -fno-schedule-insns"
    "src/arm/neon_dotprod.cc:-march=armv8.2-a+dotprod -fno-schedule-insns") ;;
  *) echo "build-driver.sh: unknown arch ${arch}" >&2; exit 2 ;;
esac

objs=()
for spec in "${isa[@]}"; do
  src="${spec%%:*}"
  obj="${exe}.$(basename "${src}" .cc).o"
  read -r -a isa_flags <<<"${spec#*:}"
  "${cxx}" "${flags[@]}" "${isa_flags[@]}" -c "${kernels_dir}/${src}" -o "${obj}"
  objs+=("${obj}")
done
cd "${kernels_dir}"
"${cxx}" "${flags[@]}" "${core[@]}" "${main}" "${objs[@]}" -pthread "$@" -o "${exe}"
