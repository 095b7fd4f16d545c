// The non-conv ops. Add has per-ISA SIMD kernels; the pools and mean are written once as
// channel-inner loops the compiler vectorizes at the baseline ISA (they are < 1% of the MACs); pad
// is row and pixel copies (its element-by-element reference is far slower); fc is a 32K-MAC dot
// product, so its reference code is its only code.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/checks.h"
#include "common/internal.h"
#include "ref/ref.h"

namespace facegate {

using detail::fail;

namespace {

void check_pool(const char* what, const PoolDesc& d) {
  detail::check_window(what, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left, d.pad_bottom,
                       d.pad_right);
}

// Input window [y0, y1) x [x0, x1) of output pixel (oy, ox), clipped to the image.
struct Window {
  int y0, y1, x0, x1;
  int count() const { return (y1 - y0) * (x1 - x0); }
};
Window window(const PoolDesc& d, Shape s, int oy, int ox) {
  const int y = oy * d.stride_h - d.pad_top, x = ox * d.stride_w - d.pad_left;
  return {std::max(0, y), std::min(s.h, y + d.kh), std::max(0, x), std::min(s.w, x + d.kw)};
}

// Channel loops as functions with restrict parameters: GCC honours restrict there (not on block-scope
// pointers), and without it a uint8_t store may alias anything, which blocks vectorization. Each call
// covers a whole output row for one kernel tap (n pixels, src stepping by the stride), so the loop
// overhead is paid per row, not per pixel and tap.
void max_row(uint8_t* __restrict dst, const uint8_t* __restrict src, int n, int c, int step) {
  for (int i = 0; i < n; ++i, dst += c, src += step)
    for (int ch = 0; ch < c; ++ch) dst[ch] = dst[ch] > src[ch] ? dst[ch] : src[ch];
}
void sum_row(int32_t* __restrict acc, const uint8_t* __restrict src, int n, int c, int step) {
  for (int i = 0; i < n; ++i, acc += c, src += step)
    for (int ch = 0; ch < c; ++ch) acc[ch] += src[ch];
}

// Calls tap(dst_offset, src, n) for each in-bounds kernel tap of output row oy: n output pixels from
// dst_offset (in pixels), reading input pixel src and every stride_w-th after it.
template <class Tap>
void for_row_taps(const PoolDesc& d, Shape s, Shape o, int oy, const uint8_t* in, Tap tap) {
  for (int ky = 0; ky < d.kh; ++ky) {
    const int iy = oy * d.stride_h - d.pad_top + ky;
    if (iy < 0 || iy >= s.h) continue;
    for (int kx = 0; kx < d.kw; ++kx) {
      // ox in [ox0, ox1) reads ix = ox * stride - pad_left + kx inside [0, s.w).
      const int ox0 = std::max(0, (d.pad_left - kx + d.stride_w - 1) / d.stride_w);
      const int ox1 = std::min(o.w, (s.w - 1 + d.pad_left - kx) / d.stride_w + 1);
      if (ox1 <= ox0) continue;
      tap(ox0, in + (static_cast<size_t>(iy) * s.w + ox0 * d.stride_w - d.pad_left + kx) * s.c, ox1 - ox0);
    }
  }
}

void maxpool_fast(const PoolDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const Shape o = pool_out_shape(d, s);
  const size_t row = static_cast<size_t>(o.w) * s.c;
  for (int oy = 0; oy < o.h; ++oy) {
    uint8_t* dst = out + oy * row;
    // Every window holds an input pixel (pads < kernel) and inputs are >= 0, so 0 stands for -inf.
    std::memset(dst, 0, row);
    for_row_taps(d, s, o, oy, in, [&](int ox0, const uint8_t* src, int n) {
      max_row(dst + static_cast<size_t>(ox0) * s.c, src, n, s.c, d.stride_w * s.c);
    });
  }
}

// Sums of (x - zp) are formed as sum(x) - count * zp: the same integer the reference computes.
void requant_sums(const int32_t* sums, int c, int count, int zp_in, float mult, int zp_out, uint8_t* out) {
  const float m = mult / static_cast<float>(count);
  const float lo = detail::clamp_lo(zp_out, false), hi = detail::clamp_hi(zp_out);
  for (int i = 0; i < c; ++i) out[i] = detail::requantize(sums[i] - count * zp_in, m, zp_out, lo, hi);
}

void avgpool_fast(const AvgPoolDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const Shape o = pool_out_shape(d.pool, s);
  const size_t row = static_cast<size_t>(o.w) * s.c;
  std::vector<int32_t> sums(row);
  for (int oy = 0; oy < o.h; ++oy) {
    std::fill(sums.begin(), sums.end(), 0);
    for_row_taps(d.pool, s, o, oy, in, [&](int ox0, const uint8_t* src, int n) {
      sum_row(sums.data() + static_cast<size_t>(ox0) * s.c, src, n, s.c, d.pool.stride_w * s.c);
    });
    for (int ox = 0; ox < o.w; ++ox)
      requant_sums(sums.data() + static_cast<size_t>(ox) * s.c, s.c, window(d.pool, s, oy, ox).count(), d.zp_in,
                   d.mult, d.zp_out, out + oy * row + static_cast<size_t>(ox) * s.c);
  }
}

void mean_fast(const MeanDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  std::vector<int32_t> sums(s.c, 0);
  for (int p = 0; p < s.h * s.w; ++p) sum_row(sums.data(), in + static_cast<size_t>(p) * s.c, 1, s.c, 0);
  requant_sums(sums.data(), s.c, s.h * s.w, d.zp_in, d.mult, d.zp_out, out);
}

// Whole rows where the channels are not padded, else a pixel's channels at a time.
void pad_fast(const PadDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const Shape o = pad_out_shape(d, s);
  const auto fill = static_cast<uint8_t>(d.value);
  const size_t orow = static_cast<size_t>(o.w) * o.c, irow = static_cast<size_t>(s.w) * s.c;
  std::memset(out, fill, d.top * orow);
  for (int y = 0; y < s.h; ++y) {
    uint8_t* dst = out + (y + d.top) * orow;
    const uint8_t* src = in + y * irow;
    std::memset(dst, fill, static_cast<size_t>(d.left) * o.c);
    uint8_t* body = dst + static_cast<size_t>(d.left) * o.c;
    if (d.front == 0 && d.back == 0) {
      std::memcpy(body, src, irow);
    } else {
      for (int x = 0; x < s.w; ++x, body += o.c, src += s.c) {
        std::memset(body, fill, d.front);
        std::memcpy(body + d.front, src, s.c);
        std::memset(body + d.front + s.c, fill, d.back);
      }
    }
    std::memset(dst + static_cast<size_t>(d.left + s.w) * o.c, fill, static_cast<size_t>(d.right) * o.c);
  }
  std::memset(out + (s.h + d.top) * orow, fill, d.bottom * orow);
}

bool scalar() { return active_isa() == Isa::Scalar; }

}  // namespace

void add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n, int threads) {
  detail::check_add(d);
  if (n > (size_t{1} << 30)) fail("add: more than 2^30 elements");
  if (n > 0 && (!a || !b || !out)) fail("add: null buffer");
  threads = detail::resolve_threads(threads);
  const detail::IsaKernels* k = detail::kernels_for(active_isa());
  const auto kernel = k ? k->add : ref::add;
  constexpr int kChunk = 16384;
  const int chunks = static_cast<int>((n + kChunk - 1) / kChunk);
  detail::parallel_for(chunks, threads, [&](int b0, int b1) {
    const size_t lo = static_cast<size_t>(b0) * kChunk, hi = std::min(n, static_cast<size_t>(b1) * kChunk);
    kernel(d, a + lo, b + lo, out + lo, hi - lo);
  });
}

Shape pool_out_shape(const PoolDesc& d, Shape in) {
  check_pool("pool", d);
  return detail::window_out("pool", in, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left,
                            d.pad_bottom, d.pad_right, in.c);
}

void maxpool(const PoolDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  pool_out_shape(d, s);
  if (!in || !out) fail("maxpool: null buffer");
  (scalar() ? ref::maxpool : maxpool_fast)(d, in, s, out);
}

void avgpool(const AvgPoolDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  pool_out_shape(d.pool, s);
  detail::check_requant("avgpool", d.zp_in, d.zp_out, d.mult);
  if (!in || !out) fail("avgpool: null buffer");
  (scalar() ? ref::avgpool : avgpool_fast)(d, in, s, out);
}

Shape pad_out_shape(const PadDesc& d, Shape in) {
  detail::check_shape("pad input", in);
  for (const int p : {d.top, d.left, d.front, d.bottom, d.right, d.back}) detail::check_range("pad amount", p, 0, 1 << 12);
  detail::check_zp("pad value", d.value);
  const Shape o{in.h + d.top + d.bottom, in.w + d.left + d.right, in.c + d.front + d.back};
  detail::check_shape("pad output", o);
  return o;
}

void pad(const PadDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  pad_out_shape(d, s);
  if (!in || !out) fail("pad: null buffer");
  (scalar() ? ref::pad : pad_fast)(d, in, s, out);
}

void mean(const MeanDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  detail::check_shape("mean input", s);
  detail::check_requant("mean", d.zp_in, d.zp_out, d.mult);
  if (static_cast<long long>(s.h) * s.w * 255 > (1LL << 31) - 1) fail("mean: too many pixels for int32 sums");
  if (!in || !out) fail("mean: null buffer");
  (scalar() ? ref::mean : mean_fast)(d, in, s, out);
}

Fc::Fc(int cin, int cout, int zp_in, const int8_t* weights, const float* scale, const float* bias)
    : cin_(cin), cout_(cout), zp_in_(zp_in) {
  detail::check_range("fc cin", cin, 1, 1 << 16);
  detail::check_range("fc cout", cout, 1, 1 << 16);
  detail::check_zp("fc zp_in", zp_in);
  if (!weights || !scale || !bias) fail("fc: weights, scale and bias are required");
  w_.assign(weights, weights + static_cast<size_t>(cin) * cout);
  scale_.assign(scale, scale + cout);
  bias_.assign(bias, bias + cout);
}

void Fc::run(const uint8_t* in, float* out) const {
  if (!in || !out) fail("fc: null buffer");
  ref::fc(cin_, cout_, zp_in_, w_.data(), scale_.data(), bias_.data(), in, out);
}

}  // namespace facegate

namespace facegate {

void quantize_nchw(const float* in, Shape s, float scale, int zp, uint8_t* out) {
  detail::check_shape("quantize", s);
  detail::check_zp("quantize zp", zp);
  detail::check_finite_positive("quantize scale", scale);
  if (!in || !out) detail::fail("quantize: null buffer");
  const size_t plane = static_cast<size_t>(s.h) * s.w;
  // Clamped to [-zp - 1, 256 - zp] before rounding (same result after saturation, and in
  // round_even's range); NaN fails the first comparison and saturates to 0. A plane at a time into
  // a contiguous buffer, so the division and rounding vectorize; then interleaved into NHWC.
  const float lo = static_cast<float>(-zp - 1), hi = static_cast<float>(256 - zp), z = static_cast<float>(zp);
  thread_local std::vector<uint8_t> q;
  q.resize(plane);
  uint8_t* qp = q.data();
  for (int c = 0; c < s.c; ++c) {
    const float* src = in + c * plane;
    for (size_t p = 0; p < plane; ++p) {
      float v = src[p] / scale;
      v = v >= lo ? v : lo;
      v = v <= hi ? v : hi;
      v = detail::round_even(v) + z;
      v = v >= 0.f ? v : 0.f;
      qp[p] = static_cast<uint8_t>(static_cast<int>(v <= 255.f ? v : 255.f));
    }
    for (size_t p = 0; p < plane; ++p) out[p * s.c + c] = qp[p];
  }
}

}  // namespace facegate
