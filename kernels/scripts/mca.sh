#!/usr/bin/env bash
# Static cost estimate (llvm-mca) of the conv and gate-predictor inner loops for CPUs this machine
# cannot time: the NEON units for Cortex-A72 / Cortex-A76 (cross-compiled with aarch64-linux-gnu-g++
# -S, the flags binding.gyp uses) and, for comparison, the AVX-512 VNNI unit. The loops are marked
# with FACEGATE_MCA_BEGIN/END (common/internal.h), compiled in only with -DFACEGATE_MCA.
# The gated conv runs the dense micro-kernel over a gathered pixel list, so its inner loop is the
# conv loop; what gating adds per site is the predictor loop (gate-row).
# Usage: mca.sh [out_dir]   (prints one summary line per loop; full reports in out_dir)
set -euo pipefail

kernels_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${kernels_dir}/build/mca}"
mkdir -p "${out}"
flags=(-std=c++17 -O3 -ffp-contract=off -DFACEGATE_MCA -I"${kernels_dir}/include" -I"${kernels_dir}/src" -S)

# source | compiler | ISA flags | llvm-mca triple | CPUs
units=(
  "src/arm/neon.cc|aarch64-linux-gnu-g++|-march=armv8-a -fno-schedule-insns|aarch64|cortex-a72 cortex-a76"
  "src/arm/neon_dotprod.cc|aarch64-linux-gnu-g++|-march=armv8.2-a+dotprod -fno-schedule-insns|aarch64|cortex-a76"
  "src/x86/avx512_vnni.cc|g++|-mavx512f -mavx512vnni|x86_64|icelake-server"
)
printf '%-26s %-16s %-15s %8s %12s %8s %10s\n' unit loop cpu instrs "cycles/iter" IPC "MACs/cyc"
for spec in "${units[@]}"; do
  IFS='|' read -r src cxx isa triple cpus <<<"${spec}"
  read -r -a isa_flags <<<"${isa}"
  asm="${out}/$(basename "${src}" .cc).s"
  "${cxx}" "${flags[@]}" "${isa_flags[@]}" "${kernels_dir}/${src}" -o "${asm}"
  # Each marked loop body on its own: llvm-mca then never sees the rest of the file (GCC writes some
  # immediates LLVM's AArch64 parser rejects, e.g. movi v1.16b, 0xffffffffffffff80).
  regions=$(sed -n 's/.*LLVM-MCA-BEGIN \([a-z0-9-]*\).*/\1/p' "${asm}" | sort -u)
  for region in ${regions}; do
    body="${out}/$(basename "${src}" .cc).${region}.s"
    # The first occurrence of the region (an inlined copy is the same loop).
    awk -v r="${region}" '$0 ~ "LLVM-MCA-BEGIN " r "$" { on = 1; next } on && /LLVM-MCA-END/ { exit } on' \
      "${asm}" >"${body}"
    case "${region}" in
      conv-sdot) macs=$((6 * 64)) ;;       # 6 pixels x 16 channels x 4 k
      conv-smull) macs=$((4 * 4 * 16)) ;;  # 4 pixels x 4 channels x 16 k
      conv-vpdpbusd) macs=$((2 * 8 * 64)) ;;  # 2 blocks x 8 pixels x 16 channels x 4 k
      gate-row) if [[ "${triple}" == x86_64 ]]; then macs=$((8 * 32)); else macs=$((4 * 8)); fi ;;
      *) macs=0 ;;
    esac
    for cpu in ${cpus}; do
      report="${out}/$(basename "${src}" .cc).${region}.${cpu}.txt"
      llvm-mca -mtriple="${triple}" -mcpu="${cpu}" -iterations=200 "${body}" >"${report}" 2>&1
      # Block RThroughput: cycles per iteration in the steady state (the bound); MACs per iteration
      # are what one pass of the loop body computes.
      awk -v unit="$(basename "${src}")" -v region="${region}" -v cpu="${cpu}" -v macs="${macs}" '
        /^Instructions:/ { instrs = $2 / 200 }
        /^IPC:/ { ipc = $2 }
        /^Block RThroughput:/ { rt = $3 }
        END { printf "%-26s %-16s %-15s %8d %12.2f %8.2f %10.1f\n", unit, region, cpu, instrs, rt, ipc, macs / rt }' \
        "${report}"
    done
  done
done
