// AVX-512 VNNI path (Zen 4/5, Ice Lake and later servers). vpdpbusd sums four u8 x s8 products
// straight into int32 with no 16-bit intermediate, so the raw uint8 input is exact as is; the
// zero point is folded into the bias (image_offset 0). One zmm holds a whole 16-channel block.
// Compiled with -mavx512f -mavx512vnni; only called when the CPU (and OS) support both.
#include <immintrin.h>

#include "common/conv_driver.h"

namespace facegate::detail {
namespace {

struct VnniKernel {
  using A = uint8_t;
  using W = int8_t;
  // Two blocks per call halve the input broadcasts per vpdpbusd (a broadcast per product made
  // the loop load-bound); 8 pixels keep their row pointers in general-purpose registers.
  static constexpr int NB = 2;
  static constexpr int MR = 8;

  static void block(const uint8_t* const* rows, int kh, int run_len, int nb, const BlockRef<int8_t>* blk,
                    const ConvJob& j) {
    if (nb == 2)
      compute<2>(rows, kh, run_len, blk, j);
    else
      compute<1>(rows, kh, run_len, blk, j);
  }

  template <int N>
  static void compute(const uint8_t* const* rows, int kh, int run_len, const BlockRef<int8_t>* blk,
                      const ConvJob& j) {
    __m512i acc[N][MR];
    for (int b = 0; b < N; ++b)
      for (int m = 0; m < MR; ++m) acc[b][m] = _mm512_setzero_si512();
    const int8_t* w[N];
    for (int b = 0; b < N; ++b) w[b] = blk[b].w;
    for (int ky = 0; ky < kh; ++ky) {
      const uint8_t* const* r = rows + ky * MR;
      for (int k = 0; k < run_len; k += 4) {
        __m512i wv[N];  // [16 channels][4 k] per block
        for (int b = 0; b < N; ++b) {
          wv[b] = _mm512_loadu_si512(w[b]);
          w[b] += 64;
        }
        for (int m = 0; m < MR; ++m) {
          int32_t x;
          std::memcpy(&x, r[m] + k, 4);
          const __m512i xv = _mm512_set1_epi32(x);
          for (int b = 0; b < N; ++b) acc[b][m] = _mm512_dpbusd_epi32(acc[b][m], xv, wv[b]);
        }
      }
    }
    const __m512 lo = _mm512_set1_ps(j.lo), hi = _mm512_set1_ps(j.hi);
    const __m512i zp = _mm512_set1_epi32(j.zp_out);
    for (int b = 0; b < N; ++b) {
      const __m512i bias = _mm512_loadu_si512(blk[b].bias);
      const __m512 mult = _mm512_loadu_ps(blk[b].mult);
      for (int m = 0; m < MR; ++m) {
        __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc[b][m], bias)), mult);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        // In [0, 255] after + zp, so the truncating narrow is exact.
        const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(blk[b].out[m]), _mm512_cvtepi32_epi8(q));
      }
    }
  }
};

}  // namespace

extern const IsaKernels kAvx512VnniKernels = {
    Isa::Avx512Vnni, VnniKernel::MR, VnniKernel::NB, 4, 16, 1, 0, prepare_u8, conv_tasks<VnniKernel>, avx2_add,
    avx2_gate_row,
};

}  // namespace facegate::detail
