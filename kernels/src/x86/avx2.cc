// AVX2 path. Without VNNI, vpmaddubsw (u8 x s8 -> s16 pair sums) saturates for pairs like
// 255*127 + 255*127, so it cannot be exact. Instead the input is widened once per conv to
// int16 (x - zp_in, in [-255, 255]) and multiplied with int16 weights by vpmaddwd: pair sums
// are at most 2*255*127 = 64770, exact in int32. vpmaddwd does 16 MACs per multiply uop and
// vpmaddubsw+vpmaddwd 32 MACs per two, so both need the same multiply uops; the exact path pays
// one more vpaddd per 32 MACs and twice the bytes (measured cost in docs/kernels.md).
#include <immintrin.h>

#include "common/conv_driver.h"

namespace facegate::detail {
namespace {

struct Avx2Kernel {
  using A = int16_t;
  using W = int16_t;
  static constexpr int NB = 1;
  static constexpr int MR = 6;  // 6 pixels x 16 channels = 12 ymm accumulators

  static void block(const int16_t* const* rows, int kh, int run_len, int /*nb = 1*/,
                    const BlockRef<int16_t>* blk, const ConvJob& j) {
    const int16_t* w = blk->w;
    // The k loop is written in asm: GCC spills some of the 12 accumulators (16 ymm registers in
    // all) to the stack, which costs a third of the throughput. Accumulators are pinned to
    // ymm0-11; ymm12-15 hold the two weight vectors, the broadcast input pair and a product.
    register __m256i a00 asm("ymm0") = _mm256_setzero_si256();
    register __m256i a01 asm("ymm1") = a00, a10 asm("ymm2") = a00, a11 asm("ymm3") = a00;
    register __m256i a20 asm("ymm4") = a00, a21 asm("ymm5") = a00, a30 asm("ymm6") = a00;
    register __m256i a31 asm("ymm7") = a00, a40 asm("ymm8") = a00, a41 asm("ymm9") = a00;
    register __m256i a50 asm("ymm10") = a00, a51 asm("ymm11") = a00;
    const size_t n = static_cast<size_t>(run_len);
    for (int ky = 0; ky < kh; ++ky) {
      const int16_t* const* r = rows + ky * MR;
      size_t k = 0;
#define FG_STEP(reg, acc0, acc1)                                           \
  "vpbroadcastd (%%r" #reg ",%[k],2), %%ymm14\n"                           \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n vpaddd %%ymm15, %[" #acc0 "], %[" #acc0 "]\n" \
  "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n vpaddd %%ymm14, %[" #acc1 "], %[" #acc1 "]\n"
      asm("mov (%[r]), %%r8\n mov 8(%[r]), %%r9\n mov 16(%[r]), %%r10\n"
          "mov 24(%[r]), %%r11\n mov 32(%[r]), %%r12\n mov 40(%[r]), %%r13\n"
          "1:\n"
          "vmovdqu (%[w]), %%ymm12\n"
          "vmovdqu 32(%[w]), %%ymm13\n"
          FG_STEP(8, a00, a01) FG_STEP(9, a10, a11) FG_STEP(10, a20, a21)
          FG_STEP(11, a30, a31) FG_STEP(12, a40, a41) FG_STEP(13, a50, a51)
          "add $64, %[w]\n"
          "add $2, %[k]\n"
          "cmp %[n], %[k]\n"
          "jb 1b\n"
          : [a00] "+x"(a00), [a01] "+x"(a01), [a10] "+x"(a10), [a11] "+x"(a11), [a20] "+x"(a20),
            [a21] "+x"(a21), [a30] "+x"(a30), [a31] "+x"(a31), [a40] "+x"(a40), [a41] "+x"(a41),
            [a50] "+x"(a50), [a51] "+x"(a51), [w] "+r"(w), [k] "+r"(k)
          : [r] "r"(r), [n] "r"(n)
          : "r8", "r9", "r10", "r11", "r12", "r13", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef FG_STEP
    }
    const __m256i acc[MR][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->bias));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->bias + 8));
    const __m256 m0 = _mm256_loadu_ps(blk->mult), m1 = _mm256_loadu_ps(blk->mult + 8);
    const __m256 lo = _mm256_set1_ps(j.lo), hi = _mm256_set1_ps(j.hi);
    const __m256i zp = _mm256_set1_epi16(static_cast<int16_t>(j.zp_out));
    for (int m = 0; m < MR; ++m) {
      __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[m][0], b0)), m0);
      __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[m][1], b1)), m1);
      v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
      v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
      // Values are in [-zp, 255 - zp]: the int16 pack cannot saturate; adding zp lands in [0, 255].
      __m256i p = _mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1));
      p = _mm256_permute4x64_epi64(_mm256_add_epi16(p, zp), 0xD8);
      const __m128i u8 = _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(blk->out[m]), u8);
    }
  }
};

void prepare(const uint8_t* in, Shape s, int pad_top, int pad_left, int img_w, int zp, int y0, int y1,
             void* image) {
  const auto tf = [zp](uint8_t x) { return static_cast<int16_t>(x - zp); };
  prepare_image<int16_t>(in, s, pad_top, pad_left, img_w, y0, y1, int16_t{0}, tf, static_cast<int16_t*>(image));
}

__m256 add_lane(__m128i bytes, __m256i zp, __m256 mult) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), zp)), mult);
}

}  // namespace

// Also the AVX-512 path's add (every AVX-512 CPU has AVX2).
void avx2_add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n) {
  const __m256i zpa = _mm256_set1_epi32(d.zp_a), zpb = _mm256_set1_epi32(d.zp_b);
  const __m256i zpo = _mm256_set1_epi32(d.zp_out);
  const __m256 ma = _mm256_set1_ps(d.mult_a), mb = _mm256_set1_ps(d.mult_b);
  const __m256 lo = _mm256_set1_ps(clamp_lo(d.zp_out, d.relu)), hi = _mm256_set1_ps(clamp_hi(d.zp_out));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 va = add_lane(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a + i)), zpa, ma);
    const __m256 vb = add_lane(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + i)), zpb, mb);
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(va, vb), lo), hi);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), zpo);
    const __m128i s16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(s16, s16));
  }
  for (; i < n; ++i) out[i] = add_value(d, a[i], b[i]);
}

extern const IsaKernels kAvx2Kernels = {
    Isa::Avx2, Avx2Kernel::MR, Avx2Kernel::NB, 2, 16, 2, kOffsetIsZp, prepare, conv_tasks<Avx2Kernel>, avx2_add,
};

}  // namespace facegate::detail
