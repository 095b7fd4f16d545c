// Cortex-A76/A78 path: SDOT does 4 int8 MACs per lane into int32, so no saturation concerns.
// Compiled with -march=armv8.2-a+dotprod; only called when HWCAP_ASIMDDP is set.
#include "arm/neon_common.h"

namespace facegate::detail {
namespace {

// The pixel's 4 inputs in every lane (an unaligned 4-byte load, hence memcpy).
int8x16_t load_dup4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

struct DotKernel {
  using A = int8_t;
  using W = int8_t;
  static constexpr int NB = 1;
  static constexpr int MR = 6;  // 6 pixels x 4 quads = 24 accumulators + 4 weights + 1 input

  static void block(const int8_t* const* rows, int kh, int run_len, int /*nb = 1*/,
                    const BlockRef<int8_t>* blk, const ConvJob& j) {
    const int8_t* w = blk->w;
    int32x4_t acc[MR][4];
    for (int m = 0; m < MR; ++m)
      for (int q = 0; q < 4; ++q) acc[m][q] = vdupq_n_s32(0);
    for (int ky = 0; ky < kh; ++ky) {
      const int8_t* const* r = rows + ky * MR;
      for (int k = 0; k < run_len; k += 4, w += 64) {
        FACEGATE_MCA_BEGIN("conv-sdot");
        // Weights are [16 channels][4 k]: lane i of wq dots channel 4q+i with the pixel's 4 inputs.
        const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16), w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48);
        for (int m = 0; m < MR; ++m) {
          const int8x16_t x = load_dup4(r[m] + k);
          acc[m][0] = vdotq_s32(acc[m][0], w0, x);
          acc[m][1] = vdotq_s32(acc[m][1], w1, x);
          acc[m][2] = vdotq_s32(acc[m][2], w2, x);
          acc[m][3] = vdotq_s32(acc[m][3], w3, x);
        }
        FACEGATE_MCA_END();
      }
    }
    for (int m = 0; m < MR; ++m) store16(acc[m], *blk, j, m);
  }
};

}  // namespace

extern const IsaKernels kNeonDotKernels = {
    Isa::NeonDot, DotKernel::MR, DotKernel::NB, 4, 16, 1, 128, prepare, conv_tasks<DotKernel>, add, gate_row,
};

}  // namespace facegate::detail
