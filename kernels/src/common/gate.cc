// ReLU-zero gates: which pixels of a gated conv to compute (docs/relu-zero.md, docs/kernels.md).
// The predictor has a single output channel, so it runs as one int16 dot product per kernel row
// instead of through the 16-channel conv microkernels, which would compute 15 channels for nothing.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/checks.h"
#include "common/internal.h"
#include "ref/ref.h"

namespace facegate {

using detail::fail;
using detail::kMaxKernel;

namespace {

int ceil_div(int a, int b) { return (a + b - 1) / b; }

Shape logit_grid(const GateDesc& d, Shape in) {
  return detail::window_out("gate", in, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left, d.pad_bottom,
                            d.pad_right, 1);
}

// Row loops as functions with restrict parameters and scalar arguments (not members read through
// `this`, which a uint8_t store could alias), so they vectorize.
void widen_row(const uint8_t* __restrict src, size_t n, int16_t zp, int16_t* __restrict dst) {
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<int16_t>(src[i] - zp);
}
void requantize_row(const int32_t* __restrict acc, int n, int32_t bias, float mult, int zp, uint8_t* __restrict out) {
  const float lo = detail::clamp_lo(zp, false), hi = detail::clamp_hi(zp);
  for (int i = 0; i < n; ++i) out[i] = detail::requantize(bias + acc[i], mult, zp, lo, hi);
}

}  // namespace

Gate::Gate(const GateDesc& d, const int8_t* weights) : d_(d) {
  detail::check_range("gate cin", d.cin, 1, 1 << 14);
  detail::check_window("gate", d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left, d.pad_bottom,
                       d.pad_right);
  detail::check_requant("gate", d.zp_in, d.zp_logit, d.mult);
  detail::check_finite_positive("gate scale_logit", d.scale_logit);
  detail::check_range("gate tile", d.tile, 1, 64);
  detail::check_range("gate out_h", d.out_h, 1, 1 << 16);
  detail::check_range("gate out_w", d.out_w, 1, 1 << 16);
  if (d.requantize) {
    detail::check_zp("gate zp_decision", d.zp_decision);
    detail::check_finite_positive("gate scale_decision", d.scale_decision);
  }
  if (!std::isfinite(d.threshold)) fail("gate threshold must be finite");
  if (!weights) fail("gate: weights are required");
  const int run = d.kw * d.cin, padded = ceil_div(run, detail::kGateRun) * detail::kGateRun;
  w_.assign(static_cast<size_t>(d.kh) * padded, 0);
  for (int ky = 0; ky < d.kh; ++ky)
    for (int k = 0; k < run; ++k) {
      const int8_t v = weights[ky * run + k];
      if (v == -128) fail("gate weights must be in [-127, 127]; found -128 at index " + std::to_string(ky * run + k));
      w_[static_cast<size_t>(ky) * padded + k] = v;
    }
}

Shape Gate::out_shape(Shape in) const {
  if (in.c != d_.cin)
    fail("gate: input has " + std::to_string(in.c) + " channels, weights expect " + std::to_string(d_.cin));
  const Shape g = logit_grid(d_, in);
  // The tiles, spread over their pixels, must cover the gated conv's output.
  if (d_.out_h > ceil_div(g.h, d_.tile) * d_.tile || d_.out_w > ceil_div(g.w, d_.tile) * d_.tile)
    fail("gate: " + std::to_string(g.h) + "x" + std::to_string(g.w) + " logits in " + std::to_string(d_.tile) +
         "-pixel tiles do not cover the " + std::to_string(d_.out_h) + "x" + std::to_string(d_.out_w) + " output");
  return Shape{d_.out_h, d_.out_w, 1};
}

uint64_t Gate::macs(Shape in) const {
  const Shape g = logit_grid(d_, in);
  return static_cast<uint64_t>(g.h) * g.w * d_.kh * d_.kw * d_.cin;
}

void Gate::run(const uint8_t* in, Shape s, uint8_t* mask, int threads) const {
  out_shape(s);
  threads = detail::resolve_threads(threads);
  if (!in || !mask) fail("gate: null buffer");
  const Shape g = logit_grid(d_, s);
  const int img_w = s.w + d_.pad_left + d_.pad_right, img_h = s.h + d_.pad_top + d_.pad_bottom;
  const size_t row = static_cast<size_t>(img_w) * s.c;
  // x - zp_in with the padding at 0 (the zero point), so every kernel row is one contiguous run; the
  // slack lets the last run read a whole vector (its weights there are 0).
  thread_local std::vector<int16_t> image;
  image.resize(static_cast<size_t>(img_h) * row + detail::kGateRun);
  int16_t* const pix = image.data();
  const size_t left = static_cast<size_t>(d_.pad_left) * s.c, body = static_cast<size_t>(s.w) * s.c;
  std::fill(pix, pix + d_.pad_top * row, int16_t{0});
  for (int y = 0; y < s.h; ++y) {
    int16_t* dst = pix + (y + d_.pad_top) * row;
    std::fill(dst, dst + left, int16_t{0});
    widen_row(in + y * body, body, static_cast<int16_t>(d_.zp_in), dst + left);
    std::fill(dst + left + body, dst + row, int16_t{0});
  }
  std::fill(pix + (s.h + d_.pad_top) * row, pix + image.size(), int16_t{0});
  const detail::IsaKernels* k = detail::kernels_for(active_isa());
  const auto gate_row = k ? k->gate_row : ref::gate_row;
  const int run = static_cast<int>(w_.size()) / d_.kh;
  // Per-thread scratch that only grows, like the conv's image: no allocation per run.
  thread_local std::vector<uint8_t> logit_scratch;
  logit_scratch.resize(static_cast<size_t>(g.h) * g.w);
  uint8_t* const logits = logit_scratch.data();
  const int16_t* img = pix;  // workers must not name the caller's thread_locals
  detail::parallel_for(g.h, threads, [&](int y0, int y1) {
    thread_local std::vector<int32_t> acc;
    acc.resize(g.w);
    for (int oy = y0; oy < y1; ++oy) {
      const int16_t* rows[kMaxKernel];
      for (int ky = 0; ky < d_.kh; ++ky) rows[ky] = img + (static_cast<size_t>(oy) * d_.stride_h + ky) * row;
      gate_row(rows, d_.kh, w_.data(), run, d_.stride_w * s.c, g.w, acc.data());
      requantize_row(acc.data(), g.w, d_.bias, d_.mult, d_.zp_logit, logits + static_cast<size_t>(oy) * g.w);
    }
  });
  // The float ops of the ONNX pattern, in ONNX Runtime's order: DequantizeLinear, AveragePool (sum,
  // then divide by the in-bounds count), QuantizeLinear (divide, round half to even, saturate).
  const int t = d_.tile;
  for (int ty = 0; ty * t < d_.out_h; ++ty)
    for (int tx = 0; tx * t < d_.out_w; ++tx) {
      float sum = 0.f;
      int count = 0;
      for (int y = ty * t; y < std::min(g.h, ty * t + t); ++y)
        for (int x = tx * t; x < std::min(g.w, tx * t + t); ++x, ++count)
          sum += static_cast<float>(logits[y * g.w + x] - d_.zp_logit) * d_.scale_logit;
      float v = count ? sum / static_cast<float>(count) : 0.f;
      if (d_.requantize) {
        const float lo_d = static_cast<float>(-d_.zp_decision - 1), hi_d = static_cast<float>(256 - d_.zp_decision);
        const float r = detail::round_even(std::min(std::max(v / d_.scale_decision, lo_d), hi_d));
        const float q = std::min(std::max(r + static_cast<float>(d_.zp_decision), 0.f), 255.f);
        v = (q - static_cast<float>(d_.zp_decision)) * d_.scale_decision;
      }
      const uint8_t open = v > d_.threshold;
      for (int y = ty * t; y < std::min(d_.out_h, ty * t + t); ++y)
        std::fill(mask + y * d_.out_w + tx * t, mask + y * d_.out_w + std::min(d_.out_w, tx * t + t), open);
    }
}

}  // namespace facegate
