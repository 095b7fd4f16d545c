// Internal contracts between the ISA-independent driver code and the per-ISA translation units.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>

#include "facegate/kernels.h"

// Marks an inner-loop body for llvm-mca (kernels/scripts/mca.sh compiles with -DFACEGATE_MCA; the
// markers are assembler comments, so an ordinary build has none).
#ifdef FACEGATE_MCA
#if defined(__aarch64__)
#define FACEGATE_MCA_BEGIN(name) asm volatile("// LLVM-MCA-BEGIN " name)
#define FACEGATE_MCA_END() asm volatile("// LLVM-MCA-END")
#else
#define FACEGATE_MCA_BEGIN(name) asm volatile("# LLVM-MCA-BEGIN " name)
#define FACEGATE_MCA_END() asm volatile("# LLVM-MCA-END")
#endif
#else
#define FACEGATE_MCA_BEGIN(name)
#define FACEGATE_MCA_END()
#endif

namespace facegate::detail {

constexpr int kMaxKernel = 16;  // largest kh/kw; bounds the per-tile row-pointer array
// Gate predictor rows are zero-padded to a multiple of this many int16 (one zmm, two ymm), so the
// stem's 7 x 3 = 21-value row is one AVX-512 step; the image has that much slack at its end.
constexpr int kGateRun = 32;

// Internal linkage: ISA TUs inline these with their own -m flags, and a shared weak copy could
// hand AVX2 code to a baseline caller.
namespace {

// The requantization every path must reproduce bit for bit (MLAS order: float(acc) * m, clamp,
// round-to-nearest-even, + zp). Clamping before rounding equals rounding then saturating because
// the bounds are integers; it also keeps the float->int conversion in range.
// Round half to even, as std::nearbyint in the default rounding mode, for |v| < 2^22: adding and
// subtracting 1.5 * 2^23 leaves v rounded to an integer (IEEE arithmetic: never built with
// -ffast-math, which could fold it away). Without SSE4.1 (the x86-64 baseline) std::nearbyint is a
// library call per value.
inline float round_even(float v) { return (v + 12582912.f) - 12582912.f; }
inline float clamp_lo(int zp, bool relu) { return relu ? 0.f : static_cast<float>(-zp); }
inline float clamp_hi(int zp) { return static_cast<float>(255 - zp); }
inline uint8_t requantize(int32_t acc, float mult, int zp, float lo, float hi) {
  float v = static_cast<float>(acc) * mult;
  v = v < lo ? lo : (v > hi ? hi : v);
  return static_cast<uint8_t>(static_cast<int>(round_even(v)) + zp);
}
inline uint8_t add_value(const AddDesc& d, uint8_t a, uint8_t b) {
  const float va = d.mult_a * static_cast<float>(a - d.zp_a);
  const float vb = d.mult_b * static_cast<float>(b - d.zp_b);
  float v = va + vb;
  const float lo = clamp_lo(d.zp_out, d.relu), hi = clamp_hi(d.zp_out);
  v = v < lo ? lo : (v > hi ? hi : v);
  return static_cast<uint8_t>(static_cast<int>(round_even(v)) + d.zp_out);
}

}  // namespace

// One conv call as seen by a microkernel driver. Tasks are (pixel tile, channel block) pairs,
// numbered tile-major so consecutive tasks reuse the same input rows from L1.
struct ConvJob {
  const void* image;  // input transformed to the ISA's element type, zero-point padded
  int img_w, img_c;   // padded width and channels of `image`
  int kh, stride_h, stride_w;
  int run_len;        // kw * cin rounded up to the ISA's k alignment
  int out_w, cout;
  const int32_t* rows;  // output pixel list, or nullptr for 0..num_rows-1
  int num_rows;
  const int32_t* blocks;  // channel block list, or nullptr for 0..num_blocks-1
  int num_blocks;
  const void* weights;  // packed, `block_stride` elements per 16-channel block
  size_t block_stride;
  const int32_t* bias;  // per channel, padded to whole blocks (offset correction folded in)
  const float* mult;
  int zp_out;
  float lo, hi;
  uint8_t* out;
};

constexpr int kOffsetIsZp = -1;

struct IsaKernels {
  Isa isa;
  int mr;          // output pixels per microkernel call
  int nb;          // 16-channel blocks per microkernel call
  int ka;          // k alignment of each kernel-row run
  int sub_nr;      // channels per packed weight sub-block (kChannelBlock / sub_nr sub-blocks)
  int elem_size;   // bytes per image and weight element (2: int16, 1: int8 or uint8)
  // The image holds x - image_offset; kOffsetIsZp means the conv's zp_in. Otherwise the bias
  // absorbs the difference: sum((x - zp) * w) = sum((x - offset) * w) + (offset - zp) * sum(w).
  int image_offset;
  // Writes rows [y0, y1) of the padded image (pads hold the zero point).
  void (*prepare)(const uint8_t* in, Shape in_shape, int pad_top, int pad_left, int img_w, int zp, int y0,
                  int y1, void* image);
  void (*conv_tasks)(const ConvJob& job, int begin, int end);
  void (*add)(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n);
  // A gate predictor's one output channel along an output row: for pixel i < n, out[i] = sum over
  // ky < kh and k < run of rows[ky][i * step + k] * w[ky * run + k]; run is a multiple of kGateRun.
  void (*gate_row)(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out);
};

// AVX2 pieces the x86 VNNI paths reuse (every VNNI CPU has AVX2).
void avx2_add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n);
void avx2_gate_row(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out);
void prepare_u8(const uint8_t* in, Shape s, int pad_top, int pad_left, int img_w, int zp, int y0, int y1,
                void* image);

// nullptr for Isa::Scalar and for ISAs not compiled into this build.
const IsaKernels* kernels_for(Isa isa);

// Runs fn over [0, n) split into chunks on up to `threads` threads (the caller included) of a
// persistent pool; fn must not throw.
void parallel_for(int n, int threads, const std::function<void(int, int)>& fn);
int resolve_threads(int threads);

}  // namespace facegate::detail
