// Standalone (no Node) check of every fast path this CPU offers against the scalar reference.
// Exits non-zero on the first mismatch. Used natively and under qemu-aarch64 (run-arm64.sh).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "facegate/kernels.h"

using namespace facegate;

namespace {

std::mt19937 rng(12345);
int rand_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
template <class T>
T pick(std::initializer_list<T> v) { return *(v.begin() + rand_int(0, static_cast<int>(v.size()) - 1)); }

// mode 0: uniform; 1: only the extremes (provokes int16 pair saturation); 2: narrow band around mid.
std::vector<uint8_t> rand_u8(size_t n, int mode) {
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(mode == 1 ? pick({0, 255}) : mode == 2 ? rand_int(100, 156) : rand_int(0, 255));
  return v;
}
std::vector<int8_t> rand_w(size_t n, int mode) {
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(mode == 1 ? pick({-127, 127}) : rand_int(-127, 127));
  return v;
}

int failures = 0;
long checks = 0;

template <class T>
bool same(const char* what, const std::string& ctx, const std::vector<T>& want, const std::vector<T>& got) {
  ++checks;
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] != got[i]) {
      std::printf("MISMATCH %s [%s] at %zu: ref %d fast %d\n", what, ctx.c_str(), i, static_cast<int>(want[i]),
                  static_cast<int>(got[i]));
      ++failures;
      return false;
    }
  return true;
}

template <class F>
auto with_isa(Isa isa, F f) {
  force_isa(isa);
  return f();
}

void test_conv(Isa isa, int iter) {
  ConvDesc d;
  const int shape = rand_int(0, 5);
  d.kh = d.kw = shape == 0 ? 1 : shape == 1 ? 7 : 3;
  if (shape == 5) d.kw = 1 + rand_int(0, 4);
  d.cin = shape == 1 ? 3 : pick({1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 32, 33, 64});
  d.cout = pick({1, 3, 8, 15, 16, 17, 32, 33, 48, 64});
  d.stride_h = d.stride_w = rand_int(1, 2);
  if (rand_int(0, 3) == 0) d.stride_w = 3 - d.stride_h;
  d.pad_top = rand_int(0, d.kh - 1), d.pad_bottom = rand_int(0, d.kh - 1);
  d.pad_left = rand_int(0, d.kw - 1), d.pad_right = rand_int(0, d.kw - 1);
  const int mode = rand_int(0, 2);
  d.zp_in = mode == 1 ? pick({0, 255, 128}) : rand_int(0, 255);
  d.zp_out = rand_int(0, 255);
  d.relu = rand_int(0, 1) == 1;
  Shape s{rand_int(d.kh, d.kh + 12), rand_int(d.kw, d.kw + 12), d.cin};
  const auto w = rand_w(static_cast<size_t>(d.cout) * d.kh * d.kw * d.cin, mode);
  std::vector<int32_t> bias(d.cout);
  std::vector<float> mult(d.cout);
  const float scale = 1.f / (d.kh * d.kw * d.cin * 64.f);
  for (int c = 0; c < d.cout; ++c) {
    bias[c] = rand_int(-5000, 5000);
    mult[c] = scale * std::exp2(static_cast<float>(rand_int(-40, 40)) / 10.f);
  }
  const auto in = rand_u8(s.size(), mode);
  const Conv conv(d, w.data(), bias.data(), mult.data());
  const Shape o = conv.out_shape(s);
  const int pixels = o.h * o.w, blocks = (d.cout + kChannelBlock - 1) / kChannelBlock;

  std::vector<int32_t> rows, cblocks;
  ConvActive active;
  const int subset = rand_int(0, 3);  // 0: dense, 1: rows, 2: channel blocks, 3: both
  if (subset & 1) {
    for (int p = 0; p < pixels; ++p)
      if (rand_int(0, 2) == 0) rows.push_back(p);
    std::shuffle(rows.begin(), rows.end(), rng);
    active.rows = rows.data();
    active.num_rows = static_cast<int>(rows.size());
  }
  if (subset & 2) {
    for (int b = 0; b < blocks; ++b)
      if (rand_int(0, 1) == 0) cblocks.push_back(b);
    active.channel_blocks = cblocks.data();
    active.num_channel_blocks = static_cast<int>(cblocks.size());
  }
  const auto run = [&](int threads, const ConvActive& a) {
    std::vector<uint8_t> out(o.size(), 7);
    conv.run(in.data(), s, out.data(), a, threads);
    return out;
  };
  const auto want = with_isa(Isa::Scalar, [&] { return run(1, active); });
  char ctx[256];
  std::snprintf(ctx, sizeof ctx, "iter %d %dx%dx%d -> %d k%dx%d s%d,%d pads %d,%d,%d,%d zp %d/%d relu %d mode %d subset %d",
                iter, s.h, s.w, d.cin, d.cout, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left,
                d.pad_bottom, d.pad_right, d.zp_in, d.zp_out, d.relu, mode, subset);
  same("conv 1 thread", ctx, want, with_isa(isa, [&] { return run(1, active); }));
  same("conv 2 threads", ctx, want, with_isa(isa, [&] { return run(2, active); }));
  if (subset != 0) {  // subsets must agree with the dense result where computed, zp_out elsewhere
    const auto dense = with_isa(isa, [&] { return run(1, ConvActive{}); });
    std::vector<uint8_t> expect(o.size(), static_cast<uint8_t>(d.zp_out));
    const int nr = active.num_rows >= 0 ? active.num_rows : pixels;
    const int nb = active.num_channel_blocks >= 0 ? active.num_channel_blocks : blocks;
    for (int r = 0; r < nr; ++r)
      for (int b = 0; b < nb; ++b) {
        const int p = active.num_rows >= 0 ? rows[r] : r, cb = active.num_channel_blocks >= 0 ? cblocks[b] : b;
        for (int c = cb * kChannelBlock; c < std::min(d.cout, (cb + 1) * kChannelBlock); ++c)
          expect[static_cast<size_t>(p) * d.cout + c] = dense[static_cast<size_t>(p) * d.cout + c];
      }
    same("conv subset vs dense", ctx, expect, want);
  }
}

void test_add(Isa isa, int iter) {
  AddDesc d;
  d.zp_a = rand_int(0, 255), d.zp_b = rand_int(0, 255), d.zp_out = rand_int(0, 255);
  d.mult_a = std::exp2(static_cast<float>(rand_int(-20, 20)) / 10.f);
  d.mult_b = std::exp2(static_cast<float>(rand_int(-20, 20)) / 10.f);
  d.relu = rand_int(0, 1) == 1;
  const size_t n = static_cast<size_t>(rand_int(1, 70000));
  const int mode = rand_int(0, 1);
  const auto a = rand_u8(n, mode), b = rand_u8(n, mode);
  const auto run = [&] {
    std::vector<uint8_t> out(n);
    add(d, a.data(), b.data(), out.data(), n, 2);
    return out;
  };
  same("add", "iter " + std::to_string(iter) + " n " + std::to_string(n), with_isa(Isa::Scalar, run),
       with_isa(isa, run));
}

void test_pools(Isa isa, int iter) {
  PoolDesc p;
  p.kh = rand_int(1, 3), p.kw = rand_int(1, 3);
  p.stride_h = rand_int(1, 2), p.stride_w = rand_int(1, 2);
  p.pad_top = rand_int(0, p.kh - 1), p.pad_left = rand_int(0, p.kw - 1);
  p.pad_bottom = rand_int(0, p.kh - 1), p.pad_right = rand_int(0, p.kw - 1);
  const Shape s{rand_int(3, 20), rand_int(3, 20), rand_int(1, 70)};
  const auto in = rand_u8(s.size(), rand_int(0, 1));
  const Shape o = pool_out_shape(p, s);
  const std::string ctx = "iter " + std::to_string(iter);
  const auto maxp = [&] {
    std::vector<uint8_t> out(o.size());
    maxpool(p, in.data(), s, out.data());
    return out;
  };
  same("maxpool", ctx, with_isa(Isa::Scalar, maxp), with_isa(isa, maxp));
  AvgPoolDesc a;
  a.pool = p;
  a.zp_in = rand_int(0, 255), a.zp_out = rand_int(0, 255);
  a.mult = std::exp2(static_cast<float>(rand_int(-10, 10)) / 10.f);
  const auto avgp = [&] {
    std::vector<uint8_t> out(o.size());
    avgpool(a, in.data(), s, out.data());
    return out;
  };
  same("avgpool", ctx, with_isa(Isa::Scalar, avgp), with_isa(isa, avgp));
  MeanDesc m{a.zp_in, a.zp_out, a.mult};
  const auto meanf = [&] {
    std::vector<uint8_t> out(s.c);
    mean(m, in.data(), s, out.data());
    return out;
  };
  same("mean", ctx, with_isa(Isa::Scalar, meanf), with_isa(isa, meanf));
}

void test_gate(Isa isa, int iter) {
  GateDesc d;
  d.kh = d.kw = pick({1, 3});
  d.cin = pick({1, 3, 5, 16, 32, 33, 64});
  d.stride_h = d.stride_w = rand_int(1, 2);
  d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = rand_int(0, d.kh - 1);
  const int mode = rand_int(0, 2);
  d.zp_in = mode == 1 ? pick({0, 255}) : rand_int(0, 255);
  d.zp_logit = rand_int(0, 255);
  d.bias = rand_int(-3000, 3000);
  d.mult = 1.f / (d.kh * d.kw * d.cin * 64.f) * std::exp2(static_cast<float>(rand_int(-20, 20)) / 10.f);
  d.scale_logit = 0.05f * std::exp2(static_cast<float>(rand_int(-10, 10)) / 10.f);
  d.tile = rand_int(1, 4);
  const Shape s{rand_int(d.kh, d.kh + 20), rand_int(d.kw, d.kw + 20), d.cin};
  const int gh = (s.h + 2 * d.pad_top - d.kh) / d.stride_h + 1, gw = (s.w + 2 * d.pad_left - d.kw) / d.stride_w + 1;
  d.out_h = rand_int(std::max(1, gh - 1), gh), d.out_w = rand_int(std::max(1, gw - 1), gw);
  d.requantize = rand_int(0, 1) == 1;
  d.scale_decision = d.scale_logit * std::exp2(static_cast<float>(rand_int(0, 20)) / 10.f);
  d.zp_decision = rand_int(0, 255);
  d.threshold = static_cast<float>(rand_int(-2, 2)) * d.scale_logit;
  const auto w = rand_w(static_cast<size_t>(d.kh) * d.kw * d.cin, mode);
  const auto in = rand_u8(s.size(), mode);
  const Gate gate(d, w.data());
  const auto run = [&](int threads) {
    std::vector<uint8_t> mask(static_cast<size_t>(d.out_h) * d.out_w, 7);
    gate.run(in.data(), s, mask.data(), threads);
    return mask;
  };
  const auto want = with_isa(Isa::Scalar, [&] { return run(1); });
  char ctx[200];
  std::snprintf(ctx, sizeof ctx, "iter %d %dx%dx%d k%d s%d pad %d tile %d out %dx%d requant %d mode %d", iter, s.h,
                s.w, d.cin, d.kh, d.stride_h, d.pad_top, d.tile, d.out_h, d.out_w, d.requantize, mode);
  for (uint8_t m : want)
    if (m > 1) {
      std::printf("MISMATCH gate [%s]: mask value %d is neither 0 nor 1\n", ctx, m);
      ++failures;
      return;
    }
  same("gate 1 thread", ctx, want, with_isa(isa, [&] { return run(1); }));
  same("gate 2 threads", ctx, want, with_isa(isa, [&] { return run(2); }));
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 300;
  std::vector<Isa> fast;
  for (Isa isa : kAllIsas)
    if (isa != Isa::Scalar && isa_supported(isa)) fast.push_back(isa);
  std::printf("kernel_test: best ISA %s; checking", isa_name(best_isa()));
  for (Isa isa : fast) std::printf(" %s", isa_name(isa));
  std::printf(" against scalar (%d iterations each)\n", iters);
  if (fast.empty()) {  // still exercises every op, e.g. to prove nothing ISA-specific leaks into baseline code
    std::printf("kernel_test: no fast path on this CPU; running the scalar path alone\n");
    fast.push_back(Isa::Scalar);
  }
  for (Isa isa : fast) {
    for (int i = 0; i < iters && failures < 10; ++i) {
      test_conv(isa, i);
      if (i % 4 == 0) test_add(isa, i);
      if (i % 2 == 0) test_pools(isa, i);
      if (i % 2 == 1) test_gate(isa, i);
    }
    std::printf("kernel_test: %s %s\n", isa_name(isa), failures ? "FAILED" : "ok");
  }
  std::printf("kernel_test: %ld comparisons, %d mismatches\n", checks, failures);
  return failures ? 1 : 0;
}
