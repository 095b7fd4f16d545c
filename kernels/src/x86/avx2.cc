// AVX2 and AVX-VNNI paths: one 6x16 ymm kernel with two inner loops.
//
// AVX2: without VNNI, vpmaddubsw (u8 x s8 -> s16 pair sums) saturates for pairs like
// 255*127 + 255*127, so it cannot be exact. Instead the input is widened once per conv to
// int16 (x - zp_in, in [-255, 255]) and multiplied with int16 weights by vpmaddwd: pair sums
// are at most 2*255*127 = 64770, exact in int32. vpmaddwd does 16 MACs per multiply uop and
// vpmaddubsw+vpmaddwd 32 MACs per two, so both need the same multiply uops; the exact path pays
// one more vpaddd per 32 MACs and twice the bytes (measured cost in docs/kernels.md).
#include <immintrin.h>

#include "common/conv_driver.h"

namespace facegate::detail {
namespace {

// The k loop of both ymm kernels is asm: GCC spills some of the 12 accumulators (16 ymm
// registers in all), which cost a third of the throughput. Accumulators are pinned to ymm0-11;
// ymm12-13 hold the two weight vectors (64 bytes per k step), ymm14 the broadcast input, ymm15 a
// product. STEP(reg, acc0, acc1) multiplies the pixel whose row pointer is in %%r<reg>.
#define FG_YMM_KLOOP(STEP, KSTEP)                                                                  \
  asm("mov (%[r]), %%r8\n mov 8(%[r]), %%r9\n mov 16(%[r]), %%r10\n"                              \
      "mov 24(%[r]), %%r11\n mov 32(%[r]), %%r12\n mov 40(%[r]), %%r13\n"                         \
      "1:\n"                                                                                       \
      "vmovdqu (%[w]), %%ymm12\n"                                                                  \
      "vmovdqu 32(%[w]), %%ymm13\n" STEP(8, a00, a01) STEP(9, a10, a11) STEP(10, a20, a21)         \
          STEP(11, a30, a31) STEP(12, a40, a41) STEP(13, a50, a51)                                  \
      "add $64, %[w]\n"                                                                            \
      "add $" #KSTEP ", %[k]\n"                                                                    \
      "cmp %[n], %[k]\n"                                                                           \
      "jb 1b\n"                                                                                    \
      : [a00] "+x"(a[0]), [a01] "+x"(a[1]), [a10] "+x"(a[2]), [a11] "+x"(a[3]), [a20] "+x"(a[4]),  \
        [a21] "+x"(a[5]), [a30] "+x"(a[6]), [a31] "+x"(a[7]), [a40] "+x"(a[8]), [a41] "+x"(a[9]),  \
        [a50] "+x"(a[10]), [a51] "+x"(a[11]), [w] "+r"(w), [k] "+r"(k)                            \
      : [r] "r"(r), [n] "r"(n)                                                                     \
      : "r8", "r9", "r10", "r11", "r12", "r13", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")

// AVX2: pairs of int16 (x - zp) from the image, [16 channels][2 k] int16 weights.
struct MaddLoop {
  using A = int16_t;
  static void run(__m256i* a, const int16_t* const* r, const int16_t*& w, size_t n) {
    size_t k = 0;
#define FG_STEP(reg, acc0, acc1)                                                         \
  "vpbroadcastd (%%r" #reg ",%[k],2), %%ymm14\n"                                          \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n vpaddd %%ymm15, %[" #acc0 "], %[" #acc0 "]\n" \
  "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n vpaddd %%ymm14, %[" #acc1 "], %[" #acc1 "]\n"
    FG_YMM_KLOOP(FG_STEP, 2);
#undef FG_STEP
  }
};

// AVX-VNNI (Alder Lake and later clients, Zen 5): quads of raw uint8 from the image,
// [16 channels][4 k] int8 weights; vpdpbusd sums 4 u8 x s8 products into int32 exactly. The
// {vex} prefix keeps the encoding off AVX-512 (which these CPUs may lack).
struct DpbusdLoop {
  using A = uint8_t;
  static void run(__m256i* a, const uint8_t* const* r, const int8_t*& w, size_t n) {
    size_t k = 0;
#define FG_STEP(reg, acc0, acc1)                                                         \
  "vpbroadcastd (%%r" #reg ",%[k],1), %%ymm14\n"                                          \
  "%{vex%} vpdpbusd %%ymm12, %%ymm14, %[" #acc0 "]\n"                                     \
  "%{vex%} vpdpbusd %%ymm13, %%ymm14, %[" #acc1 "]\n"
    FG_YMM_KLOOP(FG_STEP, 4);
#undef FG_STEP
  }
};

// 6 pixels x 16 channels in 12 ymm accumulators (a[2m], a[2m+1]: channels 0-7, 8-15 of pixel m).
template <class Loop, class Weight>
struct YmmKernel {
  using A = typename Loop::A;
  using W = Weight;
  static constexpr int NB = 1;
  static constexpr int MR = 6;

  static void block(const A* const* rows, int kh, int run_len, int /*nb = 1*/, const BlockRef<W>* blk,
                    const ConvJob& j) {
    const W* w = blk->w;
    __m256i a[2 * MR];
    for (auto& v : a) v = _mm256_setzero_si256();
    for (int ky = 0; ky < kh; ++ky) Loop::run(a, rows + ky * MR, w, static_cast<size_t>(run_len));
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->bias));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk->bias + 8));
    const __m256 m0 = _mm256_loadu_ps(blk->mult), m1 = _mm256_loadu_ps(blk->mult + 8);
    const __m256 lo = _mm256_set1_ps(j.lo), hi = _mm256_set1_ps(j.hi);
    const __m256i zp = _mm256_set1_epi16(static_cast<int16_t>(j.zp_out));
    for (int m = 0; m < MR; ++m) {
      __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a[2 * m], b0)), m0);
      __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a[2 * m + 1], b1)), m1);
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

using Avx2Kernel = YmmKernel<MaddLoop, int16_t>;
using AvxVnniKernel = YmmKernel<DpbusdLoop, int8_t>;

void prepare_int16(const uint8_t* in, Shape s, int pad_top, int pad_left, int img_w, int zp, int y0, int y1,
                   void* image) {
  const auto tf = [zp](uint8_t x) { return static_cast<int16_t>(x - zp); };
  prepare_image<int16_t>(in, s, pad_top, pad_left, img_w, y0, y1, int16_t{0}, tf, static_cast<int16_t*>(image));
}

}  // namespace

// Raw uint8 image (zero point folded into the bias); shared with the AVX-512 VNNI unit.
void prepare_u8(const uint8_t* in, Shape s, int pad_top, int pad_left, int img_w, int zp, int y0, int y1,
                void* image) {
  const auto tf = [](uint8_t x) { return x; };
  prepare_image<uint8_t>(in, s, pad_top, pad_left, img_w, y0, y1, static_cast<uint8_t>(zp), tf,
                         static_cast<uint8_t*>(image));
}

namespace {

__m256 add_lane(__m128i bytes, __m256i zp, __m256 mult) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(bytes), zp)), mult);
}

}  // namespace

// Also the add of the VNNI paths.
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

// Also the gate dot of the VNNI paths. Gate inputs are x - zp in [-255, 255] and weights in
// [-127, 127]: vpmaddwd pair sums are exact in int32.
void avx2_gate_row(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out) {
  const auto hsum = [](__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1)));
  };
  const auto load = [](const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  int i = 0;
  // Four pixels per pass share each weight load.
  for (; i + 4 <= n; i += 4) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const int16_t* wk = w;
    for (int ky = 0; ky < kh; ++ky, wk += run) {
      const int16_t* x = rows[ky] + static_cast<size_t>(i) * step;
      for (int k = 0; k < run; k += 16) {  // one ymm: half a kGateRun
        const __m256i b = load(wk + k);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(load(x + k), b));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(load(x + step + k), b));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(load(x + 2 * step + k), b));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(load(x + 3 * step + k), b));
      }
    }
    out[i] = hsum(a0), out[i + 1] = hsum(a1), out[i + 2] = hsum(a2), out[i + 3] = hsum(a3);
  }
  for (; i < n; ++i) {
    __m256i acc = _mm256_setzero_si256();
    const int16_t* wk = w;
    for (int ky = 0; ky < kh; ++ky, wk += run) {
      const int16_t* x = rows[ky] + static_cast<size_t>(i) * step;
      for (int k = 0; k < run; k += 16) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(load(x + k), load(wk + k)));
    }
    out[i] = hsum(acc);
  }
}

extern const IsaKernels kAvx2Kernels = {
    Isa::Avx2, Avx2Kernel::MR, Avx2Kernel::NB, 2, 16, 2, kOffsetIsZp, prepare_int16, conv_tasks<Avx2Kernel>, avx2_add,
    avx2_gate_row,
};
extern const IsaKernels kAvxVnniKernels = {
    Isa::AvxVnni, AvxVnniKernel::MR, AvxVnniKernel::NB, 4, 16, 1, 0, prepare_u8, conv_tasks<AvxVnniKernel>, avx2_add,
    avx2_gate_row,
};

}  // namespace facegate::detail
