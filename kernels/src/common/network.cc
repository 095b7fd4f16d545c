#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/checks.h"
#include "common/internal.h"

namespace facegate {

using detail::fail;

namespace {

enum class Kind { Conv, Add, MaxPool, AvgPool, Pad, Mean, Fc, Gate };

struct Op {
  Op(Kind k, int a_, int b_, int out_) : kind(k), a(a_), b(b_), out(out_) {}
  Kind kind;
  int a, b, out;
  std::shared_ptr<const Conv> conv = nullptr;
  std::shared_ptr<const Fc> fc = nullptr;
  AddDesc add = {};
  PoolDesc pool = {};
  AvgPoolDesc avg = {};
  PadDesc pad = {};
  MeanDesc mean = {};
  std::shared_ptr<const Gate> gate = nullptr;
  int mask_id = -1;               // conv: the gate mask tensor, or -1 (dense)
  int mask_dilate = 1;
  uint64_t macs_per_pixel = 0;    // conv: per output pixel; gate: per run
};

// A masked conv's per-run scratch.
struct MaskScratch {
  std::vector<int32_t> rows;  // the active output pixels
  std::vector<uint8_t> wide;  // the mask widened along rows
};

// Output pixels where the mask, widened by a k x k max (k odd, centred), is non-zero: separably, rows
// then columns.
void active_rows(const uint8_t* mask, Shape s, int k, std::vector<uint8_t>& wide, std::vector<int32_t>& rows) {
  rows.clear();
  const int r = k / 2;
  if (r == 0) {
    for (int p = 0; p < s.h * s.w; ++p)
      if (mask[p]) rows.push_back(p);
    return;
  }
  wide.assign(static_cast<size_t>(s.h) * s.w, 0);
  for (int y = 0; y < s.h; ++y)
    for (int x = 0; x < s.w; ++x)
      if (mask[y * s.w + x])
        for (int xx = std::max(0, x - r); xx <= std::min(s.w - 1, x + r); ++xx) wide[y * s.w + xx] = 1;
  for (int y = 0; y < s.h; ++y)
    for (int x = 0; x < s.w; ++x) {
      bool open = false;
      for (int yy = std::max(0, y - r); yy <= std::min(s.h - 1, y + r) && !open; ++yy) open = wide[yy * s.w + x];
      if (open) rows.push_back(y * s.w + x);
    }
}

struct Tensor {
  bool defined = false, is_float = false;
  Shape shape;
  std::vector<uint8_t> u8;
  std::vector<float> f32;
};

}  // namespace

// One batch item's forward pass: its own tensors and scratch, so items can run on different threads.
struct Pass {
  std::vector<Tensor> tensors;
  std::vector<MaskScratch> scratch;  // per op
  Network::Macs macs;
  std::vector<double> op_micros;  // per op
};

struct Network::Impl {
  std::vector<Tensor> tensors;  // shapes, as the plan defines them; each pass has its own buffers
  std::vector<Op> ops;
  int input = 0;
  std::vector<std::unique_ptr<Pass>> passes;  // per batch item, made on first use
  Macs last_macs;  // summed over the last batch

  void run_pass(Pass& p, const uint8_t* input, int threads) const;
  // A tensor of a batch item of the last run (the plan's zero-filled buffer before any run).
  const Tensor& last(int id, int item) const;

  // Errors name tensors; the op is the add_* call that threw (the binding adds its plan index).
  std::string where() const { return "network: "; }

  const Tensor& source(int id) const {
    if (id < 0 || id >= static_cast<int>(tensors.size()))
      fail(where() + "input tensor " + std::to_string(id) + " out of range");
    const Tensor& t = tensors[id];
    if (!t.defined) fail(where() + "tensor " + std::to_string(id) + " is used before it is produced");
    if (t.is_float) fail(where() + "tensor " + std::to_string(id) + " is float (fc output), ops need uint8");
    return t;
  }

  void define(Op op, Shape shape, bool is_float = false) {
    if (op.out < 0 || op.out >= static_cast<int>(tensors.size()))
      fail(where() + "output tensor " + std::to_string(op.out) + " out of range");
    Tensor& t = tensors[op.out];
    if (t.defined) fail(where() + "tensor " + std::to_string(op.out) + " is produced twice");
    t.defined = true;
    t.is_float = is_float;
    t.shape = shape;
    if (is_float)
      t.f32.assign(shape.size(), 0.f);
    else
      t.u8.assign(shape.size(), 0);
    ops.push_back(std::move(op));
  }
};

Network::Network(int num_tensors, int input_id, Shape input_shape) : impl_(std::make_unique<Impl>()) {
  detail::check_range("network tensor count", num_tensors, 1, 1 << 16);
  detail::check_range("network input id", input_id, 0, num_tensors - 1);
  detail::check_shape("network input", input_shape);
  impl_->tensors.resize(num_tensors);
  Tensor& t = impl_->tensors[input_id];
  t.defined = true;
  t.shape = input_shape;
  t.u8.assign(input_shape.size(), 0);
  impl_->input = input_id;
}

Network::~Network() = default;

void Network::add_conv(int in, int out, std::shared_ptr<const Conv> conv, int mask, int mask_dilate) {
  if (!conv) fail(impl_->where() + "conv is null");
  const Shape s = conv->out_shape(impl_->source(in).shape);
  if (mask >= 0) {
    const Shape m = impl_->source(mask).shape;
    if (m.h != s.h || m.w != s.w || m.c != 1)
      fail(impl_->where() + "mask tensor " + std::to_string(mask) + " is " + std::to_string(m.h) + "x" +
           std::to_string(m.w) + "x" + std::to_string(m.c) + ", the conv output needs " + std::to_string(s.h) +
           "x" + std::to_string(s.w) + "x1");
  }
  if (mask < -1) fail(impl_->where() + "conv mask must be a tensor id or -1");
  detail::check_range("conv mask dilation", mask_dilate, 1, 15);
  if (mask_dilate % 2 == 0) fail(impl_->where() + "conv mask dilation must be odd (a centred window)");
  const ConvDesc& d = conv->desc();
  Op op(Kind::Conv, in, -1, out);
  op.macs_per_pixel = static_cast<uint64_t>(d.kh) * d.kw * d.cin * d.cout;
  op.conv = std::move(conv);
  op.mask_id = mask;
  op.mask_dilate = mask_dilate;
  impl_->define(std::move(op), s);
}

void Network::add_gate(int in, int out, std::shared_ptr<const Gate> gate) {
  if (!gate) fail(impl_->where() + "gate is null");
  const Shape in_shape = impl_->source(in).shape;
  const Shape s = gate->out_shape(in_shape);
  Op op(Kind::Gate, in, -1, out);
  op.macs_per_pixel = gate->macs(in_shape);
  op.gate = std::move(gate);
  impl_->define(std::move(op), s);
}

void Network::add_add(int a, int b, int out, const AddDesc& d) {
  const Shape sa = impl_->source(a).shape, sb = impl_->source(b).shape;
  if (sa.h != sb.h || sa.w != sb.w || sa.c != sb.c)
    fail(impl_->where() + "add operands differ in shape (" + std::to_string(sa.h) + "x" + std::to_string(sa.w) +
         "x" + std::to_string(sa.c) + " vs " + std::to_string(sb.h) + "x" + std::to_string(sb.w) + "x" +
         std::to_string(sb.c) + ")");
  detail::check_add(d);
  Op op(Kind::Add, a, b, out);
  op.add = d;
  impl_->define(std::move(op), sa);
}

void Network::add_maxpool(int in, int out, const PoolDesc& d) {
  const Shape s = pool_out_shape(d, impl_->source(in).shape);
  Op op(Kind::MaxPool, in, -1, out);
  op.pool = d;
  impl_->define(std::move(op), s);
}

void Network::add_avgpool(int in, int out, const AvgPoolDesc& d) {
  const Shape s = pool_out_shape(d.pool, impl_->source(in).shape);
  detail::check_requant("avgpool", d.zp_in, d.zp_out, d.mult);
  Op op(Kind::AvgPool, in, -1, out);
  op.avg = d;
  impl_->define(std::move(op), s);
}

void Network::add_pad(int in, int out, const PadDesc& d) {
  const Shape s = pad_out_shape(d, impl_->source(in).shape);
  Op op(Kind::Pad, in, -1, out);
  op.pad = d;
  impl_->define(std::move(op), s);
}

void Network::add_mean(int in, int out, const MeanDesc& d) {
  const Shape s = impl_->source(in).shape;
  detail::check_requant("mean", d.zp_in, d.zp_out, d.mult);
  Op op(Kind::Mean, in, -1, out);
  op.mean = d;
  impl_->define(std::move(op), Shape{1, 1, s.c});
}

void Network::add_fc(int in, int out, std::shared_ptr<const Fc> fc) {
  if (!fc) fail(impl_->where() + "fc is null");
  const Shape s = impl_->source(in).shape;
  if (static_cast<long long>(s.size()) != fc->cin())
    fail(impl_->where() + "fc expects " + std::to_string(fc->cin()) + " inputs, tensor has " +
         std::to_string(s.size()));
  Op op(Kind::Fc, in, -1, out);
  const Shape o{1, 1, fc->cout()};
  op.fc = std::move(fc);
  impl_->define(std::move(op), o, true);
}

int Network::num_tensors() const { return static_cast<int>(impl_->tensors.size()); }
int Network::input_id() const { return impl_->input; }
size_t Network::num_ops() const { return impl_->ops.size(); }

bool Network::defined(int id) const {
  return id >= 0 && id < num_tensors() && impl_->tensors[id].defined;
}

Shape Network::shape(int id) const {
  if (!defined(id)) fail("network: tensor " + std::to_string(id) + " is not defined");
  return impl_->tensors[id].shape;
}

bool Network::is_float(int id) const {
  if (!defined(id)) fail("network: tensor " + std::to_string(id) + " is not defined");
  return impl_->tensors[id].is_float;
}

void Network::run(const uint8_t* input, int threads) { run_batch(&input, 1, threads); }

void Network::run_batch(const uint8_t* const* inputs, int n, int threads) {
  threads = detail::resolve_threads(threads);
  detail::check_range("network batch", n, 1, 1 << 16);
  for (int i = 0; i < n; ++i)
    if (!inputs[i]) fail("network: null input");
  Impl& im = *impl_;
  while (static_cast<int>(im.passes.size()) < n) {
    auto p = std::make_unique<Pass>();
    p->tensors = im.tensors;
    p->scratch.resize(im.ops.size());
    im.passes.push_back(std::move(p));
  }
  if (n == 1 || threads <= 1) {
    for (int i = 0; i < n; ++i) im.run_pass(*im.passes[i], inputs[i], threads);
  } else {
    // Items on separate threads, each single-threaded: a face and its mirror run side by side, where
    // splitting each (small) layer over the threads pays a wake-up and a join per layer.
    detail::parallel_for(n, threads, [&](int b, int e) {
      for (int i = b; i < e; ++i) im.run_pass(*im.passes[i], inputs[i], 1);
    });
  }
  im.last_macs = Macs{};
  for (int i = 0; i < n; ++i) {
    im.last_macs.executed += im.passes[i]->macs.executed;
    im.last_macs.conv += im.passes[i]->macs.conv;
    im.last_macs.conv_dense += im.passes[i]->macs.conv_dense;
  }
}

void Network::Impl::run_pass(Pass& pass, const uint8_t* input, int threads) const {
  auto& t = pass.tensors;
  std::memcpy(t[this->input].u8.data(), input, t[this->input].u8.size());
  Macs macs;
  pass.op_micros.resize(ops.size());
  auto clock = std::chrono::steady_clock::now();
  for (size_t k = 0; k < ops.size(); ++k) {
    const Op& op = ops[k];
    MaskScratch& sc = pass.scratch[k];
    const Tensor& a = t[op.a];
    Tensor& o = t[op.out];
    switch (op.kind) {
      case Kind::Conv: {
        ConvActive active;
        // An all-open mask (before or after widening) runs the dense path: no pixel list, no row
        // indirection, just the dense conv.
        const Tensor* m = op.mask_id >= 0 ? &t[op.mask_id] : nullptr;
        if (m && std::memchr(m->u8.data(), 0, m->u8.size())) {
          active_rows(m->u8.data(), m->shape, op.mask_dilate, sc.wide, sc.rows);
          if (sc.rows.size() < m->u8.size()) {
            active.rows = sc.rows.data();
            active.num_rows = static_cast<int>(sc.rows.size());
          }
        }
        const size_t pixels = static_cast<size_t>(o.shape.h) * o.shape.w;
        const uint64_t conv = op.macs_per_pixel * (active.num_rows >= 0 ? static_cast<size_t>(active.num_rows) : pixels);
        macs.executed += conv;
        macs.conv += conv;
        macs.conv_dense += op.macs_per_pixel * pixels;
        op.conv->run(a.u8.data(), a.shape, o.u8.data(), active, threads);
        break;
      }
      case Kind::Gate:
        macs.executed += op.macs_per_pixel;
        op.gate->run(a.u8.data(), a.shape, o.u8.data(), threads);
        break;
      case Kind::Add:
        facegate::add(op.add, a.u8.data(), t[op.b].u8.data(), o.u8.data(), o.u8.size(), threads);
        break;
      case Kind::MaxPool:
        maxpool(op.pool, a.u8.data(), a.shape, o.u8.data());
        break;
      case Kind::AvgPool:
        avgpool(op.avg, a.u8.data(), a.shape, o.u8.data());
        break;
      case Kind::Pad:
        pad(op.pad, a.u8.data(), a.shape, o.u8.data());
        break;
      case Kind::Mean:
        mean(op.mean, a.u8.data(), a.shape, o.u8.data());
        break;
      case Kind::Fc:
        macs.executed += static_cast<uint64_t>(op.fc->cin()) * op.fc->cout();
        op.fc->run(a.u8.data(), o.f32.data());
        break;
    }
    const auto now = std::chrono::steady_clock::now();
    pass.op_micros[k] = std::chrono::duration<double, std::micro>(now - clock).count();
    clock = now;
  }
  pass.macs = macs;
}

Network::Macs Network::last_run_macs() const { return impl_->last_macs; }
const std::vector<double>& Network::last_run_op_micros() const {
  static const std::vector<double> none;
  return impl_->passes.empty() ? none : impl_->passes[0]->op_micros;
}

const Tensor& Network::Impl::last(int id, int item) const {
  if (item < 0 || item >= std::max(1, static_cast<int>(passes.size())))
    fail("network: batch item " + std::to_string(item) + " was not run");
  return passes.empty() ? tensors[id] : passes[item]->tensors[id];
}

const uint8_t* Network::u8(int id, int item) const {
  if (is_float(id)) fail("network: tensor " + std::to_string(id) + " is float");
  return impl_->last(id, item).u8.data();
}

const float* Network::f32(int id, int item) const {
  if (!is_float(id)) fail("network: tensor " + std::to_string(id) + " is uint8");
  return impl_->last(id, item).f32.data();
}

}  // namespace facegate
