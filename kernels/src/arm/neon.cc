// Cortex-A72 path (armv8-a, no dot product). vmull_s8 + vmlal_s8 sum two int8 products in
// int16: |(x - 128) * w| <= 128 * 127 = 16256, so two fit (32512 <= 32767) as long as weights
// stay in [-127, 127] (checked at load). vpadal then widens pairs into int32.
#include "arm/neon_common.h"

namespace facegate::detail {
namespace {

struct NeonKernel {
  using A = int8_t;
  using W = int8_t;
  static constexpr int NB = 1;
  static constexpr int MR = 4;  // 4 pixels x 4 channels, each accumulator holds 4 partial sums

  static void block(const int8_t* const* rows, int kh, int run_len, int /*nb = 1*/,
                    const BlockRef<int8_t>* blk, const ConvJob& j) {
    const int8_t* w = blk->w;
    int32x4_t sums[MR][4];
    for (int q = 0; q < 4; ++q) {  // weights are [quad][ky][k/16][4 channels][16 k]
      int32x4_t acc[MR][4];
      for (int m = 0; m < MR; ++m)
        for (int c = 0; c < 4; ++c) acc[m][c] = vdupq_n_s32(0);
      for (int ky = 0; ky < kh; ++ky) {
        const int8_t* const* r = rows + ky * MR;
        for (int k = 0; k < run_len; k += 16, w += 64) {
          FACEGATE_MCA_BEGIN("conv-smull");
          int8x16_t wc[4], x[MR];
          for (int c = 0; c < 4; ++c) wc[c] = vld1q_s8(w + 16 * c);
          for (int m = 0; m < MR; ++m) x[m] = vld1q_s8(r[m] + k);
          for (int m = 0; m < MR; ++m)
            for (int c = 0; c < 4; ++c) {
              const int16x8_t p = vmlal_high_s8(vmull_s8(vget_low_s8(x[m]), vget_low_s8(wc[c])), x[m], wc[c]);
              acc[m][c] = vpadalq_s16(acc[m][c], p);
            }
          FACEGATE_MCA_END();
        }
      }
      for (int m = 0; m < MR; ++m)
        sums[m][q] = vpaddq_s32(vpaddq_s32(acc[m][0], acc[m][1]), vpaddq_s32(acc[m][2], acc[m][3]));
    }
    for (int m = 0; m < MR; ++m) store16(sums[m], *blk, j, m);
  }
};

}  // namespace

extern const IsaKernels kNeonKernels = {
    Isa::Neon, NeonKernel::MR, NeonKernel::NB, 16, 4, 1, 128, prepare, conv_tasks<NeonKernel>, add, gate_row,
};

}  // namespace facegate::detail
