// Parts shared by the two NEON translation units (plain armv8-a and +dotprod). The input is stored
// as int8 (x - 128) so products with the [-127, 127] weights need no widening; the zero point
// moves into the bias: sum((x - zp) * w) = sum((x - 128) * w) + (128 - zp) * sum(w).
#pragma once

#include <arm_neon.h>

#include "common/conv_driver.h"

namespace facegate::detail {
namespace {

void prepare(const uint8_t* in, Shape s, int pad_top, int pad_left, int img_w, int zp, int y0, int y1,
             void* image) {
  const auto tf = [](uint8_t x) { return static_cast<int8_t>(x ^ 0x80); };
  prepare_image<int8_t>(in, s, pad_top, pad_left, img_w, y0, y1, static_cast<int8_t>(zp ^ 0x80), tf,
                        static_cast<int8_t*>(image));
}

int32x4_t requant4(int32x4_t acc, const int32_t* bias, const float* mult, const ConvJob& j) {
  float32x4_t v = vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc, vld1q_s32(bias))), vld1q_f32(mult));
  v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(j.lo)), vdupq_n_f32(j.hi));
  return vaddq_s32(vcvtnq_s32_f32(v), vdupq_n_s32(j.zp_out));  // FCVTNS: round to nearest even
}

// acc[q] holds channels 4q..4q+3 of pixel m.
void store16(const int32x4_t acc[4], const BlockRef<int8_t>& blk, const ConvJob& j, int m) {
  const int32_t* bias = blk.bias;
  const float* mult = blk.mult;
  int16x8_t lo = vcombine_s16(vqmovn_s32(requant4(acc[0], bias, mult, j)),
                              vqmovn_s32(requant4(acc[1], bias + 4, mult + 4, j)));
  int16x8_t hi = vcombine_s16(vqmovn_s32(requant4(acc[2], bias + 8, mult + 8, j)),
                              vqmovn_s32(requant4(acc[3], bias + 12, mult + 12, j)));
  vst1q_u8(blk.out[m], vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi)));
}

float32x4_t add_lane(int16x4_t x, float32x4_t mult) { return vmulq_f32(vcvtq_f32_s32(vmovl_s16(x)), mult); }

int32x4_t add_round(float32x4_t va, float32x4_t vb, float32x4_t lo, float32x4_t hi, int32x4_t zp) {
  return vaddq_s32(vcvtnq_s32_f32(vminq_f32(vmaxq_f32(vaddq_f32(va, vb), lo), hi)), zp);
}

void add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n) {
  const int16x8_t zpa = vdupq_n_s16(static_cast<int16_t>(d.zp_a));
  const int16x8_t zpb = vdupq_n_s16(static_cast<int16_t>(d.zp_b));
  const int32x4_t zpo = vdupq_n_s32(d.zp_out);
  const float32x4_t ma = vdupq_n_f32(d.mult_a), mb = vdupq_n_f32(d.mult_b);
  const float32x4_t lo = vdupq_n_f32(clamp_lo(d.zp_out, d.relu)), hi = vdupq_n_f32(clamp_hi(d.zp_out));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int16x8_t xa = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(a + i))), zpa);
    const int16x8_t xb = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(b + i))), zpb);
    const int32x4_t q0 = add_round(add_lane(vget_low_s16(xa), ma), add_lane(vget_low_s16(xb), mb), lo, hi, zpo);
    const int32x4_t q1 = add_round(add_lane(vget_high_s16(xa), ma), add_lane(vget_high_s16(xb), mb), lo, hi, zpo);
    vst1_u8(out + i, vqmovun_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1))));
  }
  for (; i < n; ++i) out[i] = add_value(d, a[i], b[i]);
}

// Four pixels per pass share each weight load, and their four sums come out of one pairwise-add
// tree (vpaddq) instead of a horizontal add per pixel.
void gate_row(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out) {
  const auto mac = [](int32x4_t acc, int16x8_t a, int16x8_t b) {
    return vmlal_high_s16(vmlal_s16(acc, vget_low_s16(a), vget_low_s16(b)), a, b);
  };
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
    const int16_t* wk = w;
    for (int ky = 0; ky < kh; ++ky, wk += run) {
      const int16_t* x = rows[ky] + static_cast<size_t>(i) * step;
      for (int k = 0; k < run; k += 8) {
        FACEGATE_MCA_BEGIN("gate-row");
        const int16x8_t b = vld1q_s16(wk + k);
        a0 = mac(a0, vld1q_s16(x + k), b);
        a1 = mac(a1, vld1q_s16(x + step + k), b);
        a2 = mac(a2, vld1q_s16(x + 2 * step + k), b);
        a3 = mac(a3, vld1q_s16(x + 3 * step + k), b);
        FACEGATE_MCA_END();
      }
    }
    vst1q_s32(out + i, vpaddq_s32(vpaddq_s32(a0, a1), vpaddq_s32(a2, a3)));
  }
  for (; i < n; ++i) {
    int32x4_t acc = vdupq_n_s32(0);
    const int16_t* wk = w;
    for (int ky = 0; ky < kh; ++ky, wk += run) {
      const int16_t* x = rows[ky] + static_cast<size_t>(i) * step;
      for (int k = 0; k < run; k += 8) acc = mac(acc, vld1q_s16(x + k), vld1q_s16(wk + k));
    }
    out[i] = vaddvq_s32(acc);
  }
}

}  // namespace
}  // namespace facegate::detail
