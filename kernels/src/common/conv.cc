#include <cstring>
#include <mutex>
#include <vector>

#include "common/checks.h"
#include "common/internal.h"
#include "ref/ref.h"

namespace facegate {

using detail::fail;

namespace {

int num_blocks(int cout) { return (cout + kChannelBlock - 1) / kChannelBlock; }

// Weights in the order the ISA's block kernel streams them:
// [block][sub-block of sub_nr channels][ky][k / ka][sub_nr][ka], where k = kx * cin + ci runs over
// one kernel row (contiguous in OHWI and in the NHWC image), zero-filled up to run_len.
template <class W>
void pack_weights(const ConvDesc& d, const int8_t* w, const detail::IsaKernels& k, int run_len, W* dst) {
  const int raw = d.kw * d.cin;
  for (int cb = 0; cb < num_blocks(d.cout); ++cb)
    for (int sub = 0; sub < kChannelBlock / k.sub_nr; ++sub)
      for (int ky = 0; ky < d.kh; ++ky)
        for (int k0 = 0; k0 < run_len; k0 += k.ka)
          for (int c = 0; c < k.sub_nr; ++c)
            for (int t = 0; t < k.ka; ++t) {
              const int co = cb * kChannelBlock + sub * k.sub_nr + c, l = k0 + t;
              *dst++ = co < d.cout && l < raw ? static_cast<W>(w[(static_cast<size_t>(co) * d.kh + ky) * raw + l]) : W{0};
            }
}

}  // namespace

struct Conv::Impl {
  struct Packed {
    std::vector<uint8_t> weights;
    std::vector<int32_t> bias;
    std::vector<float> mult;
    int run_len = 0;
    size_t block_stride = 0;
  };

  ConvDesc d;
  std::vector<int8_t> weights;
  std::vector<int32_t> bias;
  std::vector<float> mult;
  mutable std::mutex mu;
  mutable std::unique_ptr<Packed> packed[kNumIsas];

  const Packed& packed_for(const detail::IsaKernels& k) const {
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = packed[static_cast<int>(k.isa)];
    if (slot) return *slot;
    auto p = std::make_unique<Packed>();
    const int raw = d.kw * d.cin;
    p->run_len = (raw + k.ka - 1) / k.ka * k.ka;
    p->block_stride = static_cast<size_t>(kChannelBlock) * d.kh * p->run_len;
    const size_t n = p->block_stride * num_blocks(d.cout);
    p->weights.resize(n * k.elem_size);
    if (k.elem_size == 2)
      pack_weights(d, weights.data(), k, p->run_len, reinterpret_cast<int16_t*>(p->weights.data()));
    else
      pack_weights(d, weights.data(), k, p->run_len, reinterpret_cast<int8_t*>(p->weights.data()));
    const size_t padded = static_cast<size_t>(num_blocks(d.cout)) * kChannelBlock;
    p->bias.assign(padded, 0);
    p->mult.assign(padded, 0.f);
    const size_t per_channel = static_cast<size_t>(d.kh) * raw;
    for (int co = 0; co < d.cout; ++co) {
      int64_t b = bias[co];
      if (k.image_offset != detail::kOffsetIsZp) {
        int64_t sum = 0;
        for (size_t i = 0; i < per_channel; ++i) sum += weights[co * per_channel + i];
        b += (k.image_offset - d.zp_in) * sum;
      }
      p->bias[co] = static_cast<int32_t>(b);
      p->mult[co] = mult[co];
    }
    slot = std::move(p);
    return *slot;
  }
};

Conv::Conv(const ConvDesc& d, const int8_t* weights, const int32_t* bias, const float* multipliers)
    : impl_(std::make_unique<Impl>()) {
  detail::check_range("conv cin", d.cin, 1, 1 << 14);
  detail::check_range("conv cout", d.cout, 1, 1 << 14);
  detail::check_window("conv", d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left, d.pad_bottom,
                       d.pad_right);
  detail::check_range("conv zp_in", d.zp_in, 0, 255);
  detail::check_range("conv zp_out", d.zp_out, 0, 255);
  if (!weights || !bias || !multipliers) fail("conv: weights, bias and multipliers are required");
  const size_t n = static_cast<size_t>(d.cout) * d.kh * d.kw * d.cin;
  for (size_t i = 0; i < n; ++i)
    if (weights[i] == -128) fail("conv weights must be in [-127, 127] (symmetric int8); found -128 at index " + std::to_string(i));
  for (int co = 0; co < d.cout; ++co) detail::check_finite_positive("conv multiplier", multipliers[co]);
  impl_->d = d;
  impl_->weights.assign(weights, weights + n);
  impl_->bias.assign(bias, bias + d.cout);
  impl_->mult.assign(multipliers, multipliers + d.cout);
  if (const detail::IsaKernels* k = detail::kernels_for(active_isa())) impl_->packed_for(*k);
}

Conv::~Conv() = default;

const ConvDesc& Conv::desc() const { return impl_->d; }

Shape Conv::out_shape(Shape in) const {
  const ConvDesc& d = impl_->d;
  detail::check_shape("conv input", in);
  if (in.c != d.cin)
    fail("conv: input has " + std::to_string(in.c) + " channels, weights expect " + std::to_string(d.cin));
  const Shape o = detail::window_out("conv", in, d.kh, d.kw, d.stride_h, d.stride_w, d.pad_top, d.pad_left,
                                     d.pad_bottom, d.pad_right, d.cout);
  detail::check_shape("conv output", o);
  return o;
}

void Conv::run(const uint8_t* in, Shape s, uint8_t* out, const ConvActive& active, int threads) const {
  const ConvDesc& d = impl_->d;
  const Shape o = out_shape(s);
  threads = detail::resolve_threads(threads);
  if (!in || !out) fail("conv: null buffer");
  const int pixels = o.h * o.w, blocks = num_blocks(d.cout);
  if (active.num_rows > 0 && !active.rows) fail("conv: num_rows > 0 but rows is null");
  if (active.num_channel_blocks > 0 && !active.channel_blocks) fail("conv: num_channel_blocks > 0 but channel_blocks is null");
  if (active.num_rows > pixels) fail("conv: more active rows than output pixels");
  for (int i = 0; i < active.num_rows; ++i)
    if (active.rows[i] < 0 || active.rows[i] >= pixels)
      fail("conv: active row " + std::to_string(active.rows[i]) + " outside [0, " + std::to_string(pixels) + ")");
  if (active.num_channel_blocks > blocks) fail("conv: more active channel blocks than blocks");
  for (int i = 0; i < active.num_channel_blocks; ++i)
    if (active.channel_blocks[i] < 0 || active.channel_blocks[i] >= blocks)
      fail("conv: active channel block " + std::to_string(active.channel_blocks[i]) + " outside [0, " +
           std::to_string(blocks) + ")");

  // A gate closed everywhere (a block the network learned to drop): nothing to compute or prepare.
  if (active.num_rows == 0 || active.num_channel_blocks == 0) {
    std::memset(out, d.zp_out, o.size());
    return;
  }
  const detail::IsaKernels* k = detail::kernels_for(active_isa());
  if (!k) {
    ref::conv(d, impl_->weights.data(), impl_->bias.data(), impl_->mult.data(), in, s, out, active);
    return;
  }
  const Impl::Packed& p = impl_->packed_for(*k);
  const int img_h = s.h + d.pad_top + d.pad_bottom, img_w = s.w + d.pad_left + d.pad_right;
  const size_t img_bytes = static_cast<size_t>(img_h) * img_w * s.c * k->elem_size;
  const size_t slack = 64 * k->elem_size;  // run_len may read up to ka - 1 elements past a run
  thread_local std::vector<uint8_t> image;
  if (image.size() < img_bytes + slack) image.resize(img_bytes + slack);
  uint8_t* img = image.data();  // the caller's buffer: workers must not name the thread_local
  detail::parallel_for(img_h, threads, [&](int y0, int y1) {
    k->prepare(in, s, d.pad_top, d.pad_left, img_w, d.zp_in, y0, y1, img);
  });
  std::memset(img + img_bytes, 0, slack);

  if (active.num_rows >= 0 || active.num_channel_blocks >= 0) std::memset(out, d.zp_out, o.size());
  detail::ConvJob job{};
  job.image = img;
  job.img_w = img_w;
  job.img_c = s.c;
  job.kh = d.kh;
  job.stride_h = d.stride_h;
  job.stride_w = d.stride_w;
  job.run_len = p.run_len;
  job.out_w = o.w;
  job.cout = d.cout;
  job.rows = active.num_rows >= 0 ? active.rows : nullptr;
  job.num_rows = active.num_rows >= 0 ? active.num_rows : pixels;
  job.blocks = active.num_channel_blocks >= 0 ? active.channel_blocks : nullptr;
  job.num_blocks = active.num_channel_blocks >= 0 ? active.num_channel_blocks : blocks;
  job.weights = p.weights.data();
  job.block_stride = p.block_stride;
  job.bias = p.bias.data();
  job.mult = p.mult.data();
  job.zp_out = d.zp_out;
  job.lo = detail::clamp_lo(d.zp_out, d.relu);
  job.hi = detail::clamp_hi(d.zp_out);
  job.out = out;
  const int tiles = (job.num_rows + k->mr - 1) / k->mr, groups = (job.num_blocks + k->nb - 1) / k->nb;
  detail::parallel_for(tiles * groups, threads,
                       [&](int b, int e) { k->conv_tasks(job, b, e); });
}

}  // namespace facegate
