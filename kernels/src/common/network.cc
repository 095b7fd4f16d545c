#include <cstring>
#include <vector>

#include "common/checks.h"
#include "common/internal.h"

namespace facegate {

using detail::fail;

namespace {

enum class Kind { Conv, Add, MaxPool, AvgPool, Pad, Mean, Fc };

struct Op {
  Kind kind;
  int a, b, out;
  std::shared_ptr<const Conv> conv;
  std::shared_ptr<const Fc> fc;
  AddDesc add;
  PoolDesc pool;
  AvgPoolDesc avg;
  PadDesc pad;
  MeanDesc mean;
};

struct Tensor {
  bool defined = false, is_float = false;
  Shape shape;
  std::vector<uint8_t> u8;
  std::vector<float> f32;
};

}  // namespace

struct Network::Impl {
  std::vector<Tensor> tensors;
  std::vector<Op> ops;
  int input = 0;

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

void Network::add_conv(int in, int out, std::shared_ptr<const Conv> conv) {
  if (!conv) fail(impl_->where() + "conv is null");
  const Shape s = conv->out_shape(impl_->source(in).shape);
  impl_->define(Op{Kind::Conv, in, -1, out, std::move(conv), nullptr, {}, {}, {}, {}, {}}, s);
}

void Network::add_add(int a, int b, int out, const AddDesc& d) {
  const Shape sa = impl_->source(a).shape, sb = impl_->source(b).shape;
  if (sa.h != sb.h || sa.w != sb.w || sa.c != sb.c)
    fail(impl_->where() + "add operands differ in shape (" + std::to_string(sa.h) + "x" + std::to_string(sa.w) +
         "x" + std::to_string(sa.c) + " vs " + std::to_string(sb.h) + "x" + std::to_string(sb.w) + "x" +
         std::to_string(sb.c) + ")");
  detail::check_add(d);
  impl_->define(Op{Kind::Add, a, b, out, nullptr, nullptr, d, {}, {}, {}, {}}, sa);
}

void Network::add_maxpool(int in, int out, const PoolDesc& d) {
  const Shape s = pool_out_shape(d, impl_->source(in).shape);
  impl_->define(Op{Kind::MaxPool, in, -1, out, nullptr, nullptr, {}, d, {}, {}, {}}, s);
}

void Network::add_avgpool(int in, int out, const AvgPoolDesc& d) {
  const Shape s = pool_out_shape(d.pool, impl_->source(in).shape);
  detail::check_requant("avgpool", d.zp_in, d.zp_out, d.mult);
  impl_->define(Op{Kind::AvgPool, in, -1, out, nullptr, nullptr, {}, {}, d, {}, {}}, s);
}

void Network::add_pad(int in, int out, const PadDesc& d) {
  const Shape s = pad_out_shape(d, impl_->source(in).shape);
  impl_->define(Op{Kind::Pad, in, -1, out, nullptr, nullptr, {}, {}, {}, d, {}}, s);
}

void Network::add_mean(int in, int out, const MeanDesc& d) {
  const Shape s = impl_->source(in).shape;
  detail::check_requant("mean", d.zp_in, d.zp_out, d.mult);
  impl_->define(Op{Kind::Mean, in, -1, out, nullptr, nullptr, {}, {}, {}, {}, d}, Shape{1, 1, s.c});
}

void Network::add_fc(int in, int out, std::shared_ptr<const Fc> fc) {
  if (!fc) fail(impl_->where() + "fc is null");
  const Shape s = impl_->source(in).shape;
  if (static_cast<long long>(s.size()) != fc->cin())
    fail(impl_->where() + "fc expects " + std::to_string(fc->cin()) + " inputs, tensor has " +
         std::to_string(s.size()));
  impl_->define(Op{Kind::Fc, in, -1, out, nullptr, std::move(fc), {}, {}, {}, {}, {}}, Shape{1, 1, fc->cout()},
                true);
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

void Network::run(const uint8_t* input, int threads) {
  threads = detail::resolve_threads(threads);
  if (!input) fail("network: null input");
  auto& t = impl_->tensors;
  std::memcpy(t[impl_->input].u8.data(), input, t[impl_->input].u8.size());
  for (const Op& op : impl_->ops) {
    const Tensor& a = t[op.a];
    Tensor& o = t[op.out];
    switch (op.kind) {
      case Kind::Conv:
        op.conv->run(a.u8.data(), a.shape, o.u8.data(), {}, threads);
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
        op.fc->run(a.u8.data(), o.f32.data());
        break;
    }
  }
}

const uint8_t* Network::u8(int id) const {
  if (is_float(id)) fail("network: tensor " + std::to_string(id) + " is float");
  return impl_->tensors[id].u8.data();
}

const float* Network::f32(int id) const {
  if (!is_float(id)) fail("network: tensor " + std::to_string(id) + " is uint8");
  return impl_->tensors[id].f32.data();
}

}  // namespace facegate
