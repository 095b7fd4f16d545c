#include "ref/ref.h"

#include <algorithm>
#include <cstring>

#include "common/internal.h"

namespace facegate::ref {

using detail::clamp_hi;
using detail::clamp_lo;
using detail::requantize;

void conv(const ConvDesc& d, const int8_t* weights, const int32_t* bias, const float* mult,
          const uint8_t* in, Shape s, uint8_t* out, const ConvActive& active) {
  const int oh = (s.h + d.pad_top + d.pad_bottom - d.kh) / d.stride_h + 1;
  const int ow = (s.w + d.pad_left + d.pad_right - d.kw) / d.stride_w + 1;
  const float lo = clamp_lo(d.zp_out, d.relu), hi = clamp_hi(d.zp_out);
  const bool subset = active.num_rows >= 0 || active.num_channel_blocks >= 0;
  if (subset) std::memset(out, d.zp_out, static_cast<size_t>(oh) * ow * d.cout);
  const int nrows = active.num_rows >= 0 ? active.num_rows : oh * ow;
  const int all_blocks = (d.cout + kChannelBlock - 1) / kChannelBlock;
  const int nblocks = active.num_channel_blocks >= 0 ? active.num_channel_blocks : all_blocks;
  for (int r = 0; r < nrows; ++r) {
    const int p = active.num_rows >= 0 ? active.rows[r] : r;
    const int oy = p / ow, ox = p % ow;
    for (int bi = 0; bi < nblocks; ++bi) {
      const int cb = active.num_channel_blocks >= 0 ? active.channel_blocks[bi] : bi;
      const int cend = std::min(d.cout, (cb + 1) * kChannelBlock);
      for (int co = cb * kChannelBlock; co < cend; ++co) {
        int32_t acc = bias[co];
        for (int ky = 0; ky < d.kh; ++ky) {
          const int iy = oy * d.stride_h - d.pad_top + ky;
          if (iy < 0 || iy >= s.h) continue;  // padding is the zero point: contributes 0
          for (int kx = 0; kx < d.kw; ++kx) {
            const int ix = ox * d.stride_w - d.pad_left + kx;
            if (ix < 0 || ix >= s.w) continue;
            const uint8_t* x = in + (static_cast<size_t>(iy) * s.w + ix) * s.c;
            const int8_t* w = weights + ((static_cast<size_t>(co) * d.kh + ky) * d.kw + kx) * d.cin;
            for (int ci = 0; ci < d.cin; ++ci) acc += (x[ci] - d.zp_in) * w[ci];
          }
        }
        out[static_cast<size_t>(p) * d.cout + co] = requantize(acc, mult[co], d.zp_out, lo, hi);
      }
    }
  }
}

void gate_row(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out) {
  for (int i = 0; i < n; ++i) {
    int32_t sum = 0;
    for (int ky = 0; ky < kh; ++ky)
      for (int k = 0; k < run; ++k) sum += rows[ky][static_cast<size_t>(i) * step + k] * w[ky * run + k];
    out[i] = sum;
  }
}

void add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = detail::add_value(d, a[i], b[i]);
}

void maxpool(const PoolDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const Shape o = pool_out_shape(d, s);
  for (int oy = 0; oy < o.h; ++oy)
    for (int ox = 0; ox < o.w; ++ox)
      for (int c = 0; c < s.c; ++c) {
        int m = 0;
        for (int ky = 0; ky < d.kh; ++ky)
          for (int kx = 0; kx < d.kw; ++kx) {
            const int iy = oy * d.stride_h - d.pad_top + ky, ix = ox * d.stride_w - d.pad_left + kx;
            if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w)
              m = std::max<int>(m, in[(static_cast<size_t>(iy) * s.w + ix) * s.c + c]);
          }
        out[(static_cast<size_t>(oy) * o.w + ox) * s.c + c] = static_cast<uint8_t>(m);
      }
}

void avgpool(const AvgPoolDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const PoolDesc& p = d.pool;
  const Shape o = pool_out_shape(p, s);
  const float lo = clamp_lo(d.zp_out, false), hi = clamp_hi(d.zp_out);
  for (int oy = 0; oy < o.h; ++oy)
    for (int ox = 0; ox < o.w; ++ox)
      for (int c = 0; c < s.c; ++c) {
        int32_t sum = 0, count = 0;
        for (int ky = 0; ky < p.kh; ++ky)
          for (int kx = 0; kx < p.kw; ++kx) {
            const int iy = oy * p.stride_h - p.pad_top + ky, ix = ox * p.stride_w - p.pad_left + kx;
            if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
            sum += in[(static_cast<size_t>(iy) * s.w + ix) * s.c + c] - d.zp_in;
            ++count;
          }
        out[(static_cast<size_t>(oy) * o.w + ox) * s.c + c] =
            requantize(sum, d.mult / static_cast<float>(count), d.zp_out, lo, hi);
      }
}

void pad(const PadDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const Shape o = pad_out_shape(d, s);
  for (int y = 0; y < o.h; ++y)
    for (int x = 0; x < o.w; ++x)
      for (int c = 0; c < o.c; ++c) {
        const int iy = y - d.top, ix = x - d.left, ic = c - d.front;
        const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w && ic >= 0 && ic < s.c;
        out[(static_cast<size_t>(y) * o.w + x) * o.c + c] =
            inside ? in[(static_cast<size_t>(iy) * s.w + ix) * s.c + ic] : static_cast<uint8_t>(d.value);
      }
}

void mean(const MeanDesc& d, const uint8_t* in, Shape s, uint8_t* out) {
  const float lo = clamp_lo(d.zp_out, false), hi = clamp_hi(d.zp_out);
  const int count = s.h * s.w;
  for (int c = 0; c < s.c; ++c) {
    int32_t sum = 0;
    for (int i = 0; i < count; ++i) sum += in[static_cast<size_t>(i) * s.c + c] - d.zp_in;
    out[c] = requantize(sum, d.mult / static_cast<float>(count), d.zp_out, lo, hi);
  }
}

void fc(int cin, int cout, int zp_in, const int8_t* weights, const float* scale, const float* bias,
        const uint8_t* in, float* out) {
  for (int co = 0; co < cout; ++co) {
    int32_t acc = 0;
    for (int k = 0; k < cin; ++k) acc += (in[k] - zp_in) * weights[static_cast<size_t>(co) * cin + k];
    const float scaled = static_cast<float>(acc) * scale[co];
    out[co] = scaled + bias[co];
  }
}

}  // namespace facegate::ref
