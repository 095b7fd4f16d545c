#include <array>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/internal.h"

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace facegate {
namespace detail {

#if defined(__x86_64__)
extern const IsaKernels kAvx2Kernels;
extern const IsaKernels kAvxVnniKernels;
extern const IsaKernels kAvx512VnniKernels;
#elif defined(__aarch64__)
extern const IsaKernels kNeonKernels;
extern const IsaKernels kNeonDotKernels;
#endif

const IsaKernels* kernels_for(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::Avx2:
      return &kAvx2Kernels;
    case Isa::AvxVnni:
      return &kAvxVnniKernels;
    case Isa::Avx512Vnni:
      return &kAvx512VnniKernels;
#elif defined(__aarch64__)
    case Isa::Neon:
      return &kNeonKernels;
    case Isa::NeonDot:
      return &kNeonDotKernels;
#endif
    default:
      return nullptr;
  }
}

}  // namespace detail

namespace {

// CPU (and, via libgcc's checks of XCR0, OS) support of each ISA, probed once.
bool detect(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return true;
#if defined(__x86_64__)
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2");
    case Isa::AvxVnni:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    case Isa::Avx512Vnni:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__) && defined(__linux__)
    case Isa::Neon:
      return true;
    case Isa::NeonDot:
      return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    default:
      return false;
  }
}

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

std::atomic<int> g_active{-1};
std::atomic<int> g_threads{0};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2:
      return "avx2";
    case Isa::AvxVnni:
      return "avx-vnni";
    case Isa::Avx512Vnni:
      return "avx512-vnni";
    case Isa::NeonDot:
      return "neon-dotprod";
    case Isa::Neon:
      return "neon";
    default:
      return "scalar";
  }
}

bool isa_supported(Isa isa) {
  static const auto supported = [] {
    std::array<bool, kNumIsas> s{};
    for (Isa i : kAllIsas) s[static_cast<int>(i)] = detect(i) && (i == Isa::Scalar || detail::kernels_for(i));
    return s;
  }();
  return supported[static_cast<int>(isa)];
}

// kAllIsas is ordered slowest to fastest.
Isa best_isa() {
  static const Isa best = [] {
    Isa b = Isa::Scalar;
    for (Isa i : kAllIsas)
      if (isa_supported(i)) b = i;
    return b;
  }();
  return best;
}

Isa active_isa() {
  const int a = g_active.load(std::memory_order_relaxed);
  return a < 0 ? best_isa() : static_cast<Isa>(a);
}

void force_isa(Isa isa) {
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' is not available on this CPU/build");
  g_active.store(static_cast<int>(isa));
}

void set_threads(int n) {
  if (n < 1 || n > 256) throw std::invalid_argument("threads must be in [1, 256], got " + std::to_string(n));
  g_threads.store(n);
}

int default_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : hardware_threads();
}

namespace detail {

int resolve_threads(int threads) {
  if (threads < 0 || threads > 256)
    throw std::invalid_argument("threads must be in [0, 256] (0 = default), got " + std::to_string(threads));
  return threads == 0 ? default_threads() : threads;
}

}  // namespace detail
}  // namespace facegate
