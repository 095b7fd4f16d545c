// Argument validation shared by the op entry points; every failure is a std::invalid_argument
// whose message the Node binding passes through unchanged.
#pragma once

#include <stdexcept>
#include <string>

#include "facegate/kernels.h"

namespace facegate::detail {

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

inline void check_range(const char* what, long long v, long long lo, long long hi) {
  if (v < lo || v > hi)
    fail(std::string(what) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
         std::to_string(v));
}

// Bounds every size so element counts fit comfortably in int32 index math.
inline void check_shape(const char* what, Shape s) {
  const std::string w(what);
  check_range((w + " height").c_str(), s.h, 1, 1 << 16);
  check_range((w + " width").c_str(), s.w, 1, 1 << 16);
  check_range((w + " channels").c_str(), s.c, 1, 1 << 16);
  if (static_cast<long long>(s.h) * s.w * s.c > (1LL << 30)) fail(w + " has more than 2^30 elements");
}

inline void check_finite_positive(const char* what, float v) {
  if (!(v > 0.f) || v > 3.0e38f) fail(std::string(what) + " must be finite and > 0, got " + std::to_string(v));
}

inline void check_window(const char* what, int kh, int kw, int sh, int sw, int pt, int pl, int pb, int pr) {
  const std::string w(what);
  check_range((w + " kernel height").c_str(), kh, 1, 16);
  check_range((w + " kernel width").c_str(), kw, 1, 16);
  check_range((w + " stride height").c_str(), sh, 1, 16);
  check_range((w + " stride width").c_str(), sw, 1, 16);
  // A window must always overlap the input, hence pads < kernel.
  check_range((w + " pad top").c_str(), pt, 0, kh - 1);
  check_range((w + " pad left").c_str(), pl, 0, kw - 1);
  check_range((w + " pad bottom").c_str(), pb, 0, kh - 1);
  check_range((w + " pad right").c_str(), pr, 0, kw - 1);
}

inline Shape window_out(const char* what, Shape in, int kh, int kw, int sh, int sw, int pt, int pl, int pb,
                        int pr, int c) {
  check_shape((std::string(what) + " input").c_str(), in);
  const int eh = in.h + pt + pb, ew = in.w + pl + pr;
  if (eh < kh || ew < kw)
    fail(std::string(what) + ": padded input " + std::to_string(eh) + "x" + std::to_string(ew) +
         " is smaller than the " + std::to_string(kh) + "x" + std::to_string(kw) + " kernel");
  return Shape{(eh - kh) / sh + 1, (ew - kw) / sw + 1, c};
}

inline void check_zp(const char* what, int zp) { check_range(what, zp, 0, 255); }

inline void check_add(const AddDesc& d) {
  check_zp("add zp_a", d.zp_a);
  check_zp("add zp_b", d.zp_b);
  check_zp("add zp_out", d.zp_out);
  check_finite_positive("add mult_a", d.mult_a);
  check_finite_positive("add mult_b", d.mult_b);
}

inline void check_requant(const char* op, int zp_in, int zp_out, float mult) {
  const std::string w(op);
  check_zp((w + " zp_in").c_str(), zp_in);
  check_zp((w + " zp_out").c_str(), zp_out);
  check_finite_positive((w + " mult").c_str(), mult);
}

}  // namespace facegate::detail
