// GMAC/s of the face embedder's conv shapes for the scalar reference and every fast path at 1
// thread, the best one at 2 threads, plus (x86) the raw throughput of the int8 dot-product
// instruction sequences: exact int16 vpmaddwd (AVX2 path), saturating vpmaddubsw (what AVX2 int8
// GEMMs without VNNI use), and AVX-512 vpdpbusd.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "facegate/kernels.h"

using namespace facegate;

namespace {

struct ConvShape {
  const char* name;
  int h, w, cin, cout, k, stride, pad, count;  // count: how many such convs the embedder has
};

// dlib FaceRecognitionNet after lowering (270.8M conv MACs in total).
const ConvShape kShapes[] = {
    {"conv1 150x150x3 7x7/2", 150, 150, 3, 32, 7, 2, 0, 1},
    {"35x35x32 3x3", 35, 35, 32, 32, 3, 1, 1, 6},
    {"35x35x32->64 3x3/2", 35, 35, 32, 64, 3, 2, 0, 1},
    {"17x17x64 3x3", 17, 17, 64, 64, 3, 1, 1, 7},
    {"17x17x64->128 3x3/2", 17, 17, 64, 128, 3, 2, 0, 1},
    {"8x8x128 3x3", 8, 8, 128, 128, 3, 1, 1, 5},
    {"8x8x128->256 3x3/2", 8, 8, 128, 256, 3, 2, 0, 1},
    {"3x3x256 3x3", 3, 3, 256, 256, 3, 1, 1, 1},
    {"4x4x256 3x3", 4, 4, 256, 256, 3, 1, 1, 4},
    {"4x4x256 3x3/2", 4, 4, 256, 256, 3, 2, 0, 1},
    {"1x1x256 3x3", 1, 1, 256, 256, 3, 1, 1, 1},
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Best-of-N seconds per call, each N sized to run >= min_time.
template <class F>
double time_call(F f, double min_time) {
  f();
  int reps = 1;
  double best = 1e30;
  for (double start = now(); now() - start < min_time * 3;) {
    const double t0 = now();
    for (int i = 0; i < reps; ++i) f();
    const double t = (now() - t0) / reps;
    best = std::min(best, t);
    if (t * reps < min_time / 4) reps *= 2;
  }
  return best;
}

// kh, kw, stride and padding of a ConvDesc or GateDesc from one of kShapes.
template <class Desc>
void set_window(Desc& d, const ConvShape& s) {
  d.kh = d.kw = s.k, d.stride_h = d.stride_w = s.stride;
  d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = s.pad;
}

template <class T>
std::vector<T> random_values(size_t n, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

ConvDesc bench_desc(const ConvShape& s) {
  ConvDesc d;
  d.cin = s.cin, d.cout = s.cout;
  set_window(d, s);
  d.zp_in = 3, d.zp_out = 5, d.relu = true;
  return d;
}

// A conv of one of kShapes with random weights (drawn first) and a random input, as both benchmarks
// time it; members are initialised in the order they are declared.
struct BenchConv {
  Conv conv;
  Shape in_shape;
  std::vector<uint8_t> in;
  Shape out_shape;
  std::vector<uint8_t> out;

  BenchConv(const ConvShape& s, std::mt19937& rng)
      : conv(bench_desc(s),
             random_values<int8_t>(static_cast<size_t>(s.cout) * s.k * s.k * s.cin, -127, 127, rng).data(),
             std::vector<int32_t>(s.cout, 100).data(), std::vector<float>(s.cout, 1.f / 4096).data()),
        in_shape{s.h, s.w, s.cin},
        in(random_values<uint8_t>(in_shape.size(), 0, 255, rng)),
        out_shape(conv.out_shape(in_shape)),
        out(out_shape.size()) {}

  double time(const ConvActive& active, int threads, double min_time) {
    return time_call([&] { conv.run(in.data(), in_shape, out.data(), active, threads); }, min_time);
  }
};

#if defined(__x86_64__)
#define FG_R8(x) x x x x x x x x
// 32 multiplies per iteration on 8 independent accumulators; the inputs' values do not matter.
// Best of 20 short runs, since the machine may be shared.
template <class F>
double best_rate(F body, double macs_per_iter) {
  const long n = 2000000;
  double best = 0;
  for (int rep = 0; rep < 20; ++rep) {
    const double t0 = now();
    for (long i = 0; i < n; ++i) body();
    best = std::max(best, n * macs_per_iter / (now() - t0) / 1e9);
  }
  return best;
}
// Four independent accumulator chains (ymm1, 3, 5, 7) over the inputs (ymm14|13) x (ymm15|12);
// STEP(a, b, tmp, acc) is one chain's multiply-accumulate.
#define FG_4CHAINS(STEP)                                                       \
  STEP("ymm14", "ymm15", "ymm0", "ymm1") STEP("ymm13", "ymm15", "ymm2", "ymm3") \
  STEP("ymm14", "ymm12", "ymm4", "ymm5") STEP("ymm13", "ymm12", "ymm6", "ymm7")
// Exact: int16 pairs multiplied and summed into int32.
#define FG_MADDWD(a, b, t, acc) "vpmaddwd %%" a ", %%" b ", %%" t "\n vpaddd %%" t ", %%" acc ", %%" acc "\n"
// Saturating: u8 x s8 pairs summed into int16, then widened by a vpmaddwd with ymm11.
#define FG_MADDUBSW(a, b, t, acc) \
  "vpmaddubsw %%" a ", %%" b ", %%" t "\n vpmaddwd %%" t ", %%ymm11, %%" t "\n vpaddd %%" t ", %%" acc ", %%" acc "\n"
double peak_exact() {
  return best_rate([] {
    asm volatile(FG_R8(FG_4CHAINS(FG_MADDWD))::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7");
  }, 32.0 * 16);
}
double peak_saturating() {
  return best_rate([] {
    asm volatile(FG_R8(FG_4CHAINS(FG_MADDUBSW))::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7");
  }, 32.0 * 32);
}
// 12 independent accumulators cover vpdpbusd's latency.
double peak_vnni512() {
  return best_rate([] {
    asm volatile(FG_R8("vpdpbusd %%zmm14, %%zmm15, %%zmm0\n vpdpbusd %%zmm13, %%zmm15, %%zmm1\n"
                       "vpdpbusd %%zmm14, %%zmm12, %%zmm2\n vpdpbusd %%zmm13, %%zmm12, %%zmm3\n"
                       "vpdpbusd %%zmm14, %%zmm15, %%zmm4\n vpdpbusd %%zmm13, %%zmm15, %%zmm5\n"
                       "vpdpbusd %%zmm14, %%zmm12, %%zmm6\n vpdpbusd %%zmm13, %%zmm12, %%zmm7\n"
                       "vpdpbusd %%zmm14, %%zmm15, %%zmm8\n vpdpbusd %%zmm13, %%zmm15, %%zmm9\n"
                       "vpdpbusd %%zmm14, %%zmm12, %%zmm10\n vpdpbusd %%zmm13, %%zmm12, %%zmm11\n") ::
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                       "xmm11");
  }, 96.0 * 64);
}
#endif

}  // namespace

// What a skipped MAC saves (ReLU-zero gating, docs/relu-zero.md), at the best ISA and 1 thread: each
// gated conv shape computed over a pixel list from a random 4x4-tile mask with about `open` of its
// tiles open, against the dense call. "saved/MAC" = (t_dense - t_masked) / (skipped share * t_dense):
// 1.00 means a skipped MAC saves what a dense MAC costs, below 1 the pixel list (gathered row
// pointers, partial tiles, the zero-point fill, the full input preparation) eats into the saving. The
// gate predictor that decides the mask is timed against the conv it gates.
static void skipped_work(std::mt19937& rng, double min_time) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::printf("\nskipped work (%s, 1 thread, 4x4-tile masks)\n%-24s %6s %8s %10s %10s\n", isa_name(best_isa()),
              "conv", "open", "pixels", "t/t_dense", "saved/MAC");
  const ConvShape gated[] = {kShapes[0], kShapes[1], kShapes[3], kShapes[5]};
  for (const ConvShape& s : gated) {
    BenchConv c(s, rng);
    const Shape& o = c.out_shape;
    const auto run = [&](const ConvActive& a) { return c.time(a, 1, min_time); };
    const double dense = run({});
    for (double open : {1.0, 0.75, 0.5, 0.25}) {
      std::vector<int32_t> rows;
      const int tiles_w = (o.w + 3) / 4;
      std::vector<char> tile_open(static_cast<size_t>((o.h + 3) / 4) * tiles_w);
      for (auto& t : tile_open) t = unit(rng) < open;
      for (int y = 0; y < o.h; ++y)
        for (int x = 0; x < o.w; ++x)
          if (tile_open[(y / 4) * tiles_w + x / 4]) rows.push_back(y * o.w + x);
      ConvActive a;
      a.rows = rows.data(), a.num_rows = static_cast<int>(rows.size());
      const double t = run(a), skipped = 1.0 - static_cast<double>(rows.size()) / (o.h * o.w);
      std::printf("%-24s %6.2f %8zu %10.3f %10s\n", s.name, open, rows.size(), t / dense,
                  skipped > 0 ? std::to_string((dense - t) / (skipped * dense)).substr(0, 5).c_str() : "-");
    }
    // The predictor deciding this conv's mask: one output channel, the conv's own window (3x3 for a
    // block's conv1 input), tile 4.
    GateDesc g;
    g.cin = s.cin;
    set_window(g, s);
    g.zp_in = 3, g.bias = 0, g.mult = 1.f / 4096, g.scale_logit = 0.1f, g.zp_logit = 128, g.tile = 4;
    g.out_h = o.h, g.out_w = o.w;
    const Gate gate(g, random_values<int8_t>(static_cast<size_t>(s.k) * s.k * s.cin, -127, 127, rng).data());
    std::vector<uint8_t> mask(static_cast<size_t>(o.h) * o.w);
    const double tg = time_call([&] { gate.run(c.in.data(), c.in_shape, mask.data(), 1); }, min_time);
    std::printf("%-24s gate predictor: %.1f us = %.3f of the dense conv\n", s.name, tg * 1e6, tg / dense);
  }
}

int main(int argc, char** argv) {
  const double min_time = argc > 1 ? std::atof(argv[1]) : 0.2;
  std::mt19937 rng(1);
  const Isa best = best_isa();
  std::vector<Isa> fast;
  for (Isa isa : kAllIsas)
    if (isa != Isa::Scalar && isa_supported(isa)) fast.push_back(isa);
#if defined(__x86_64__)
  if (isa_supported(Isa::Avx2)) {
    std::printf("instruction peak, 1 core: vpmaddwd (exact, int16) %.1f GMAC/s; vpmaddubsw+vpmaddwd (saturating u8s8) %.1f GMAC/s",
                peak_exact(), peak_saturating());
    if (isa_supported(Isa::Avx512Vnni)) std::printf("; vpdpbusd zmm %.1f GMAC/s", peak_vnni512());
    std::printf("\n");
  }
#endif
  std::printf("%-24s %8s %8s", "conv (GMAC/s)", "MMAC", "scalar");
  for (Isa isa : fast) std::printf(" %14s", (std::string(isa_name(isa)) + " 1t").c_str());
  std::printf(" %14s %6s\n", (std::string(isa_name(best)) + " 2t").c_str(), "count");
  double total_macs = 0, t_scalar = 0, t_best2 = 0;
  std::vector<double> t_fast(fast.size(), 0.0);
  for (const ConvShape& s : kShapes) {
    BenchConv c(s, rng);
    const Shape& o = c.out_shape;
    // Output pixels x cout x taps x cin, counting padded taps as the dense kernel computes them.
    const double macs = static_cast<double>(o.h) * o.w * s.cout * s.k * s.k * s.cin;
    const auto timed = [&](Isa isa, int threads, double t) {
      force_isa(isa);
      return c.time({}, threads, t);
    };
    const double ts = timed(Isa::Scalar, 1, min_time / 4);
    std::printf("%-24s %8.2f %8.2f", s.name, macs / 1e6, macs / ts / 1e9);
    for (size_t i = 0; i < fast.size(); ++i) {
      const double t = timed(fast[i], 1, min_time);
      std::printf(" %14.1f", macs / t / 1e9);
      t_fast[i] += t * s.count;
    }
    const double t2 = timed(best, 2, min_time);
    std::printf(" %14.1f %6d\n", macs / t2 / 1e9, s.count);
    total_macs += macs * s.count;
    t_scalar += ts * s.count, t_best2 += t2 * s.count;
  }
  std::printf("%-24s %8.2f %8.2f", "embedder total", total_macs / 1e6, total_macs / t_scalar / 1e9);
  for (double t : t_fast) std::printf(" %14.1f", total_macs / t / 1e9);
  std::printf(" %14.1f\n", total_macs / t_best2 / 1e9);
  std::printf("all convs, ms: scalar %.2f", t_scalar * 1e3);
  for (size_t i = 0; i < fast.size(); ++i) std::printf(", %s %.2f", isa_name(fast[i]), t_fast[i] * 1e3);
  std::printf(", %s 2t %.2f\n", isa_name(best), t_best2 * 1e3);
  skipped_work(rng, min_time);
  return 0;
}
