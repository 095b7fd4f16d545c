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
        FACEGATE_MCA_BEGIN("conv-vpdpbusd");
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
        FACEGATE_MCA_END();
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

// A gate predictor's row (IsaKernels::gate_row): vpdpwssd does the int16 multiply and the int32
// add in one uop over 32 values, and eight pixels share each weight load. Their eight sums are
// reduced together (halves, then a horizontal-add tree), not one horizontal sum per pixel: for the
// stem's 7 kernel rows the per-pixel reductions cost more than the products.
void gate_row(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out) {
  const auto load = [](const int16_t* p) { return _mm512_loadu_si512(p); };
  const auto half = [](__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  };
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m512i a[8];
    for (int m = 0; m < 8; ++m) a[m] = _mm512_setzero_si512();
    const int16_t* wk = w;
    for (int ky = 0; ky < kh; ++ky, wk += run) {
      const int16_t* x = rows[ky] + static_cast<size_t>(i) * step;
      for (int k = 0; k < run; k += kGateRun) {
        FACEGATE_MCA_BEGIN("gate-row");
        const __m512i b = load(wk + k);
        for (int m = 0; m < 8; ++m) a[m] = _mm512_dpwssd_epi32(a[m], load(x + m * step + k), b);
        FACEGATE_MCA_END();
      }
    }
    const __m256i h01 = _mm256_hadd_epi32(half(a[0]), half(a[1])), h23 = _mm256_hadd_epi32(half(a[2]), half(a[3]));
    const __m256i h45 = _mm256_hadd_epi32(half(a[4]), half(a[5])), h67 = _mm256_hadd_epi32(half(a[6]), half(a[7]));
    const __m256i h0123 = _mm256_hadd_epi32(h01, h23), h4567 = _mm256_hadd_epi32(h45, h67);
    const __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
                                         _mm256_permute2x128_si256(h0123, h4567, 0x31));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), sum);
  }
  for (; i < n; ++i) {
    __m512i acc = _mm512_setzero_si512();
    const int16_t* wk = w;
    for (int ky = 0; ky < kh; ++ky, wk += run) {
      const int16_t* x = rows[ky] + static_cast<size_t>(i) * step;
      for (int k = 0; k < run; k += kGateRun) acc = _mm512_dpwssd_epi32(acc, load(x + k), load(wk + k));
    }
    out[i] = _mm512_reduce_add_epi32(acc);
  }
}

}  // namespace

extern const IsaKernels kAvx512VnniKernels = {
    Isa::Avx512Vnni, VnniKernel::MR, VnniKernel::NB, 4, 16, 1, 0, prepare_u8, conv_tasks<VnniKernel>, avx2_add,
    gate_row,
};

}  // namespace facegate::detail
