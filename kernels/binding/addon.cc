// Node binding: thin, validating wrappers over the C++ API. Every bad argument becomes a JS Error;
// nothing reaches the kernels unchecked.
#include <napi.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "facegate/kernels.h"

namespace fg = facegate;

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// Runs body and turns C++ exceptions into JS exceptions.
template <class F>
auto guard(const Napi::Env& env, F body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

int to_int(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) fail(what + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 2147483647.0) fail(what + " must be an integer");
  return static_cast<int>(d);
}

float to_float(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) fail(what + " must be a number");
  return v.As<Napi::Number>().FloatValue();
}

Napi::Object to_object(const Napi::Value& v, const std::string& what) {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray()) fail(what + " must be an options object");
  return v.As<Napi::Object>();
}

struct Opts {
  Napi::Object obj;
  std::string op;

  bool has(const char* key) const { return obj.Has(key) && !obj.Get(key).IsUndefined(); }
  std::string name(const char* key) const { return op + ": '" + key + "'"; }
  Napi::Value get(const char* key) const {
    if (!has(key)) fail(name(key) + " is required");
    return obj.Get(key);
  }
  int i(const char* key) const { return to_int(get(key), name(key)); }
  int i(const char* key, int dflt) const { return has(key) ? i(key) : dflt; }
  float f(const char* key) const { return to_float(get(key), name(key)); }
  bool b(const char* key) const {
    if (!has(key)) return false;
    const Napi::Value v = obj.Get(key);
    if (!v.IsBoolean()) fail(name(key) + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  // number or array of n numbers (n = 2 for [h, w] pairs, 4 for [top, left, bottom, right], ...)
  std::vector<int> ints(const char* key, size_t n, int dflt) const {
    if (!has(key)) return std::vector<int>(n, dflt);
    const Napi::Value v = obj.Get(key);
    if (v.IsNumber() && n == 2) return std::vector<int>(2, to_int(v, name(key)));
    if (!v.IsArray() || v.As<Napi::Array>().Length() != n)
      fail(name(key) + " must be an array of " + std::to_string(n) + " integers");
    std::vector<int> out(n);
    for (size_t k = 0; k < n; ++k) out[k] = to_int(v.As<Napi::Array>().Get(static_cast<uint32_t>(k)), name(key));
    return out;
  }
};

template <class T>
Napi::TypedArrayOf<T> typed(const Napi::Value& v, napi_typedarray_type type, const char* type_name,
                            const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) fail(what + " must be a " + type_name);
  return v.As<Napi::TypedArrayOf<T>>();
}
Napi::Uint8Array u8(const Napi::Value& v, const std::string& what) {
  return typed<uint8_t>(v, napi_uint8_array, "Uint8Array", what);
}
template <class T>
Napi::TypedArrayOf<T> typed_len(const Opts& o, const char* key, napi_typedarray_type type, const char* type_name,
                                size_t len) {
  auto a = typed<T>(o.get(key), type, type_name, o.name(key));
  if (a.ElementLength() != len)
    fail(o.name(key) + " has " + std::to_string(a.ElementLength()) + " elements, expected " + std::to_string(len));
  return a;
}

fg::Shape shape_args(const Napi::CallbackInfo& info, size_t first, const std::string& what) {
  if (info.Length() < first + 3) fail(what + ": expected (input, h, w, c)");
  return fg::Shape{to_int(info[first], what + " h"), to_int(info[first + 1], what + " w"),
                   to_int(info[first + 2], what + " c")};
}

// Input buffer at info[0] with shape at info[1..3]; checks the byte length.
const uint8_t* input_arg(const Napi::CallbackInfo& info, fg::Shape s, const std::string& what) {
  const Napi::Uint8Array in = u8(info[0], what + " input");
  if (s.h < 1 || s.w < 1 || s.c < 1) fail(what + ": h, w, c must be >= 1");
  if (in.ElementLength() != s.size())
    fail(what + ": input has " + std::to_string(in.ElementLength()) + " bytes, expected h*w*c = " +
         std::to_string(s.size()));
  return in.Data();
}

int threads_arg(const Napi::CallbackInfo& info, size_t i, const std::string& what) {
  return info.Length() > i && !info[i].IsUndefined() && !info[i].IsNull() ? to_int(info[i], what + " threads") : 0;
}

Napi::Array shape_value(const Napi::Env& env, fg::Shape s) {
  Napi::Array a = Napi::Array::New(env, 3);
  a.Set(0u, s.h);
  a.Set(1u, s.w);
  a.Set(2u, s.c);
  return a;
}

std::shared_ptr<fg::Conv> make_conv(const Opts& o) {
  fg::ConvDesc d;
  d.cin = o.i("cin"), d.cout = o.i("cout"), d.kh = o.i("kh"), d.kw = o.i("kw");
  if (d.cin < 1 || d.cout < 1 || d.kh < 1 || d.kw < 1) fail(o.op + ": cin, cout, kh, kw must be >= 1");
  const auto stride = o.ints("stride", 2, 1), pads = o.ints("pads", 4, 0);
  d.stride_h = stride[0], d.stride_w = stride[1];
  d.pad_top = pads[0], d.pad_left = pads[1], d.pad_bottom = pads[2], d.pad_right = pads[3];
  d.zp_in = o.i("zpIn"), d.zp_out = o.i("zpOut"), d.relu = o.b("relu");
  if (d.cin > (1 << 14) || d.cout > (1 << 14) || d.kh > 16 || d.kw > 16) fail(o.op + ": conv too large");
  const size_t n = static_cast<size_t>(d.cout) * d.kh * d.kw * d.cin;
  const auto w = typed_len<int8_t>(o, "weights", napi_int8_array, "Int8Array", n);
  const auto bias = typed_len<int32_t>(o, "bias", napi_int32_array, "Int32Array", d.cout);
  const auto mult = typed_len<float>(o, "multipliers", napi_float32_array, "Float32Array", d.cout);
  return std::make_shared<fg::Conv>(d, w.Data(), bias.Data(), mult.Data());
}

fg::AddDesc add_desc(const Opts& o) {
  fg::AddDesc d;
  d.zp_a = o.i("zpA"), d.zp_b = o.i("zpB"), d.zp_out = o.i("zpOut");
  d.mult_a = o.f("multA"), d.mult_b = o.f("multB");
  d.relu = o.b("relu");
  return d;
}

fg::PoolDesc pool_desc(const Opts& o) {
  fg::PoolDesc d;
  const auto k = o.ints("kernel", 2, 0), s = o.ints("stride", 2, 0), p = o.ints("pads", 4, 0);
  if (!o.has("kernel") || !o.has("stride")) fail(o.op + ": 'kernel' and 'stride' are required");
  d.kh = k[0], d.kw = k[1], d.stride_h = s[0], d.stride_w = s[1];
  d.pad_top = p[0], d.pad_left = p[1], d.pad_bottom = p[2], d.pad_right = p[3];
  return d;
}

fg::AvgPoolDesc avgpool_desc(const Opts& o) {
  fg::AvgPoolDesc d;
  d.pool = pool_desc(o);
  d.zp_in = o.i("zpIn"), d.zp_out = o.i("zpOut"), d.mult = o.f("mult");
  return d;
}

fg::PadDesc pad_desc(const Opts& o) {
  const auto p = o.ints("pads", 6, 0);
  if (!o.has("pads")) fail(o.name("pads") + " is required");
  fg::PadDesc d;
  d.top = p[0], d.left = p[1], d.front = p[2], d.bottom = p[3], d.right = p[4], d.back = p[5];
  d.value = o.i("value");
  return d;
}

fg::MeanDesc mean_desc(const Opts& o) { return fg::MeanDesc{o.i("zpIn"), o.i("zpOut"), o.f("mult")}; }

std::shared_ptr<fg::Fc> make_fc(const Opts& o) {
  const int cin = o.i("cin"), cout = o.i("cout");
  if (cin < 1 || cout < 1 || cin > (1 << 16) || cout > (1 << 16)) fail(o.op + ": cin, cout must be in [1, 65536]");
  const auto w = typed_len<int8_t>(o, "weights", napi_int8_array, "Int8Array", static_cast<size_t>(cin) * cout);
  const auto scale = typed_len<float>(o, "scale", napi_float32_array, "Float32Array", cout);
  const auto bias = typed_len<float>(o, "bias", napi_float32_array, "Float32Array", cout);
  return std::make_shared<fg::Fc>(cin, cout, o.i("zpIn"), w.Data(), scale.Data(), bias.Data());
}

std::shared_ptr<fg::Gate> make_gate(const Opts& o) {
  fg::GateDesc d;
  d.cin = o.i("cin"), d.kh = o.i("kh"), d.kw = o.i("kw");
  if (d.cin < 1 || d.kh < 1 || d.kw < 1 || d.cin > (1 << 14) || d.kh > 16 || d.kw > 16)
    fail(o.op + ": cin must be in [1, 16384], kh and kw in [1, 16]");
  const auto stride = o.ints("stride", 2, 1), pads = o.ints("pads", 4, 0);
  d.stride_h = stride[0], d.stride_w = stride[1];
  d.pad_top = pads[0], d.pad_left = pads[1], d.pad_bottom = pads[2], d.pad_right = pads[3];
  d.zp_in = o.i("zpIn"), d.bias = o.i("bias"), d.mult = o.f("mult");
  d.scale_logit = o.f("scaleLogit"), d.zp_logit = o.i("zpLogit");
  d.tile = o.i("tile"), d.out_h = o.i("outH"), d.out_w = o.i("outW");
  if (o.has("decision")) {
    const Opts dec{to_object(o.get("decision"), o.name("decision")), o.op + " decision"};
    d.requantize = true;
    d.scale_decision = dec.f("scale"), d.zp_decision = dec.i("zeroPoint");
  }
  d.threshold = o.f("threshold");
  const auto w = typed_len<int8_t>(o, "weights", napi_int8_array, "Int8Array", static_cast<size_t>(d.kh) * d.kw * d.cin);
  return std::make_shared<fg::Gate>(d, w.Data());
}

// Base for op objects constructed from one options object.
template <class Self>
class OpWrap : public Napi::ObjectWrap<Self> {
 public:
  explicit OpWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Self>(info) {}

 protected:
  static Opts opts(const Napi::CallbackInfo& info, const char* op) {
    if (info.Length() < 1) fail(std::string(op) + ": expected an options object");
    return Opts{to_object(info[0], op), op};
  }
};

class ConvWrap : public OpWrap<ConvWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Conv", {InstanceMethod<&ConvWrap::Run>("run"), InstanceMethod<&ConvWrap::OutShape>("outShape")});
  }
  explicit ConvWrap(const Napi::CallbackInfo& info) : OpWrap(info) {
    guard(info.Env(), [&] { conv_ = make_conv(opts(info, "Conv")); });
  }

 private:
  Napi::Value OutShape(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return Napi::Value(shape_value(info.Env(), conv_->out_shape(shape_args(info, 0, "Conv.outShape")))); });
  }
  // run(input, h, w, c, activeRows?, activeChannelBlocks?, threads?)
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const fg::Shape s = shape_args(info, 1, "Conv.run");
      const uint8_t* in = input_arg(info, s, "Conv.run");
      const fg::Shape o = conv_->out_shape(s);
      fg::ConvActive active;
      const auto list = [&](size_t i, const char* what, const int32_t** data, int* n) {
        if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return;
        const auto a = typed<int32_t>(info[i], napi_int32_array, "Int32Array", std::string("Conv.run ") + what);
        *data = a.Data();
        *n = static_cast<int>(a.ElementLength());
      };
      list(4, "activeRows", &active.rows, &active.num_rows);
      list(5, "activeChannelBlocks", &active.channel_blocks, &active.num_channel_blocks);
      const int threads = threads_arg(info, 6, "Conv.run");
      Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), o.size());
      conv_->run(in, s, out.Data(), active, threads);
      return out;
    });
  }
  std::shared_ptr<fg::Conv> conv_;
};

class AddWrap : public OpWrap<AddWrap> {
 public:
  static Napi::Function Init(Napi::Env env) { return DefineClass(env, "Add", {InstanceMethod<&AddWrap::Run>("run")}); }
  explicit AddWrap(const Napi::CallbackInfo& info) : OpWrap(info) {
    guard(info.Env(), [&] {
      d_ = add_desc(opts(info, "Add"));
      fg::add(d_, nullptr, nullptr, nullptr, 0, 1);  // validates d_
    });
  }

 private:
  // run(a, b, threads?)
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if (info.Length() < 2) fail("Add.run: expected (a, b)");
      const Napi::Uint8Array a = u8(info[0], "Add.run a"), b = u8(info[1], "Add.run b");
      if (a.ElementLength() != b.ElementLength())
        fail("Add.run: a has " + std::to_string(a.ElementLength()) + " bytes, b has " + std::to_string(b.ElementLength()));
      Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), a.ElementLength());
      fg::add(d_, a.Data(), b.Data(), out.Data(), a.ElementLength(), threads_arg(info, 2, "Add.run"));
      return out;
    });
  }
  fg::AddDesc d_;
};

// MaxPool, AvgPool, Pad and Mean: run(input, h, w, c) -> Uint8Array, outShape(h, w, c).
template <class Desc, Desc (*Parse)(const Opts&), fg::Shape (*Out)(const Desc&, fg::Shape),
          void (*Fn)(const Desc&, const uint8_t*, fg::Shape, uint8_t*)>
class ShapeOpWrap : public OpWrap<ShapeOpWrap<Desc, Parse, Out, Fn>> {
  using Base = OpWrap<ShapeOpWrap<Desc, Parse, Out, Fn>>;

 public:
  static Napi::Function Init(Napi::Env env, const char* name) {
    name_ = name;
    return Base::DefineClass(env, name, {Base::template InstanceMethod<&ShapeOpWrap::Run>("run"),
                                         Base::template InstanceMethod<&ShapeOpWrap::OutShape>("outShape")});
  }
  explicit ShapeOpWrap(const Napi::CallbackInfo& info) : Base(info) {
    guard(info.Env(), [&] { d_ = Parse(Base::opts(info, name_.c_str())); });
  }

 private:
  Napi::Value OutShape(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return Napi::Value(shape_value(info.Env(), Out(d_, shape_args(info, 0, name_ + ".outShape")))); });
  }
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const fg::Shape s = shape_args(info, 1, name_ + ".run");
      const uint8_t* in = input_arg(info, s, name_ + ".run");
      Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), Out(d_, s).size());
      Fn(d_, in, s, out.Data());
      return out;
    });
  }
  static inline std::string name_;  // one per instantiation: "MaxPool", "AvgPool", ...
  Desc d_;
};

fg::Shape avgpool_out(const fg::AvgPoolDesc& d, fg::Shape s) { return fg::pool_out_shape(d.pool, s); }
fg::Shape mean_out(const fg::MeanDesc&, fg::Shape s) {
  if (s.c < 1) fail("Mean: channels must be >= 1");
  return fg::Shape{1, 1, s.c};
}
using MaxPoolWrap = ShapeOpWrap<fg::PoolDesc, pool_desc, fg::pool_out_shape, fg::maxpool>;
using AvgPoolWrap = ShapeOpWrap<fg::AvgPoolDesc, avgpool_desc, avgpool_out, fg::avgpool>;
using PadWrap = ShapeOpWrap<fg::PadDesc, pad_desc, fg::pad_out_shape, fg::pad>;
using MeanWrap = ShapeOpWrap<fg::MeanDesc, mean_desc, mean_out, fg::mean>;

class FcWrap : public OpWrap<FcWrap> {
 public:
  static Napi::Function Init(Napi::Env env) { return DefineClass(env, "Fc", {InstanceMethod<&FcWrap::Run>("run")}); }
  explicit FcWrap(const Napi::CallbackInfo& info) : OpWrap(info) {
    guard(info.Env(), [&] { fc_ = make_fc(opts(info, "Fc")); });
  }

 private:
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if (info.Length() < 1) fail("Fc.run: expected (input)");
      const Napi::Uint8Array in = u8(info[0], "Fc.run input");
      if (in.ElementLength() != static_cast<size_t>(fc_->cin()))
        fail("Fc.run: input has " + std::to_string(in.ElementLength()) + " bytes, expected " + std::to_string(fc_->cin()));
      Napi::Float32Array out = Napi::Float32Array::New(info.Env(), fc_->cout());
      fc_->run(in.Data(), out.Data());
      return out;
    });
  }
  std::shared_ptr<fg::Fc> fc_;
};

class NetworkWrap : public OpWrap<NetworkWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Network",
                       {InstanceMethod<&NetworkWrap::Run>("run"), InstanceMethod<&NetworkWrap::RunFloat>("runFloat"),
                        InstanceMethod<&NetworkWrap::Tensor>("tensor"),
                        InstanceMethod<&NetworkWrap::Shape>("shape"), InstanceAccessor<&NetworkWrap::NumOps>("numOps"),
                        InstanceAccessor<&NetworkWrap::LastRunMacs>("lastRunMacs"),
                        InstanceAccessor<&NetworkWrap::LastRunOpMicros>("lastRunOpMicros")});
  }
  explicit NetworkWrap(const Napi::CallbackInfo& info) : OpWrap(info) {
    guard(info.Env(), [&] { build(opts(info, "Network")); });
  }

 private:
  void build(const Opts& plan) {
    const int tensors = plan.i("tensors");
    const Opts input{to_object(plan.get("input"), "Network: 'input'"), "Network input"};
    const auto shape = input.ints("shape", 3, 0);
    if (!input.has("shape")) fail("Network input: 'shape' is required");
    net_ = std::make_unique<fg::Network>(tensors, input.i("id"), fg::Shape{shape[0], shape[1], shape[2]});
    threads_ = plan.i("threads", 0);
    if (threads_ < 0) fail("Network: 'threads' must be >= 0");
    const Napi::Value ops_v = plan.get("ops");
    if (!ops_v.IsArray()) fail("Network: 'ops' must be an array");
    const Napi::Array ops = ops_v.As<Napi::Array>();
    for (uint32_t k = 0; k < ops.Length(); ++k) {
      const std::string where = "Network ops[" + std::to_string(k) + "]";
      const Opts o0{to_object(ops.Get(k), where), where};
      const Napi::Value kind_v = o0.get("op");
      if (!kind_v.IsString()) fail(where + ": 'op' must be a string");
      const std::string kind = kind_v.As<Napi::String>().Utf8Value();
      const Opts o{o0.obj, where + " (" + kind + ")"};
      try {
        add_op(kind, o);
      } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        fail(msg.rfind(o.op, 0) == 0 ? msg : o.op + ": " + msg);  // parse errors already name the op
      }
    }
    output_ = plan.i("output");
    if (!net_->defined(output_)) fail("Network: output tensor " + std::to_string(output_) + " is never produced");
  }

  void add_op(const std::string& kind, const Opts& o) {
    if (kind == "conv") {
      net_->add_conv(o.i("input"), o.i("output"), make_conv(o), o.i("mask", -1), o.i("maskDilate", 1));
    } else if (kind == "gate") {
      net_->add_gate(o.i("input"), o.i("output"), make_gate(o));
    } else if (kind == "add") {
      const auto in = o.ints("inputs", 2, 0);
      if (!o.has("inputs")) fail(o.name("inputs") + " is required");
      net_->add_add(in[0], in[1], o.i("output"), add_desc(o));
    } else if (kind == "maxpool") {
      net_->add_maxpool(o.i("input"), o.i("output"), pool_desc(o));
    } else if (kind == "avgpool") {
      net_->add_avgpool(o.i("input"), o.i("output"), avgpool_desc(o));
    } else if (kind == "pad") {
      net_->add_pad(o.i("input"), o.i("output"), pad_desc(o));
    } else if (kind == "mean") {
      net_->add_mean(o.i("input"), o.i("output"), mean_desc(o));
    } else if (kind == "fc") {
      net_->add_fc(o.i("input"), o.i("output"), make_fc(o));
    } else {
      fail("unknown op '" + kind + "' (conv, add, maxpool, avgpool, pad, mean, fc, gate)");
    }
  }

  Napi::Value copy(const Napi::Env& env, int id, int items = 1) {
    const size_t n = net_->shape(id).size();
    if (net_->is_float(id)) {
      Napi::Float32Array a = Napi::Float32Array::New(env, n * items);
      for (int i = 0; i < items; ++i) std::copy(net_->f32(id, i), net_->f32(id, i) + n, a.Data() + i * n);
      return a;
    }
    Napi::Uint8Array a = Napi::Uint8Array::New(env, n);
    std::copy(net_->u8(id), net_->u8(id) + n, a.Data());
    return a;
  }

  // run(input, threads?) -> output tensor (Float32Array after fc, else Uint8Array)
  Napi::Value Run(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if (info.Length() < 1) fail("Network.run: expected (input)");
      const Napi::Uint8Array in = u8(info[0], "Network.run input");
      const size_t want = net_->shape(net_->input_id()).size();
      if (in.ElementLength() != want)
        fail("Network.run: input has " + std::to_string(in.ElementLength()) + " bytes, expected " + std::to_string(want));
      const int t = threads_arg(info, 1, "Network.run");
      net_->run(in.Data(), t > 0 ? t : threads_);
      return copy(info.Env(), output_);
    });
  }
  // runFloat(input, scale, zeroPoint, threads?): input is one or more float NCHW images (a batch,
  // back to back), quantized here as the model's input QuantizeLinear does; the outputs come back
  // back to back. With threads > 1 the items run side by side (Network::run_batch).
  Napi::Value RunFloat(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if (info.Length() < 3) fail("Network.runFloat: expected (input, scale, zeroPoint)");
      const auto in = typed<float>(info[0], napi_float32_array, "Float32Array", "Network.runFloat input");
      const fg::Shape s = net_->shape(net_->input_id());
      if (in.ElementLength() == 0 || in.ElementLength() % s.size() != 0)
        fail("Network.runFloat: input has " + std::to_string(in.ElementLength()) + " values, expected " +
             std::to_string(s.size()) + " per image");
      const size_t items = in.ElementLength() / s.size();
      const float scale = to_float(info[1], "Network.runFloat scale");
      const int zp = to_int(info[2], "Network.runFloat zeroPoint");
      image_.resize(in.ElementLength());
      std::vector<const uint8_t*> inputs(items);
      for (size_t i = 0; i < items; ++i) {
        fg::quantize_nchw(in.Data() + i * s.size(), s, scale, zp, image_.data() + i * s.size());
        inputs[i] = image_.data() + i * s.size();
      }
      const int t = threads_arg(info, 3, "Network.runFloat");
      net_->run_batch(inputs.data(), static_cast<int>(items), t > 0 ? t : threads_);
      return copy(info.Env(), output_, static_cast<int>(items));
    });
  }
  // tensor(id): copy of any tensor from the last run (for layer-by-layer debugging)
  Napi::Value Tensor(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] {
      if (info.Length() < 1) fail("Network.tensor: expected (id)");
      return copy(info.Env(), to_int(info[0], "Network.tensor id"));
    });
  }
  Napi::Value Shape(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] {
      if (info.Length() < 1) fail("Network.shape: expected (id)");
      return Napi::Value(shape_value(info.Env(), net_->shape(to_int(info[0], "Network.shape id"))));
    });
  }
  Napi::Value NumOps(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(net_->num_ops())); }
  Napi::Value LastRunMacs(const Napi::CallbackInfo& info) {
    const fg::Network::Macs m = net_->last_run_macs();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("executed", static_cast<double>(m.executed));
    o.Set("conv", static_cast<double>(m.conv));
    o.Set("convDense", static_cast<double>(m.conv_dense));
    return o;
  }
  Napi::Value LastRunOpMicros(const Napi::CallbackInfo& info) {
    const std::vector<double>& us = net_->last_run_op_micros();
    Napi::Float64Array a = Napi::Float64Array::New(info.Env(), us.size());
    std::copy(us.begin(), us.end(), a.Data());
    return a;
  }

  std::unique_ptr<fg::Network> net_;
  std::vector<uint8_t> image_;
  int output_ = 0, threads_ = 0;
};

fg::Isa parse_isa(const std::string& s) {
  for (fg::Isa isa : fg::kAllIsas)
    if (s == fg::isa_name(isa)) return isa;
  fail("unknown ISA '" + s + "' (scalar, neon, neon-dotprod, avx2, avx-vnni, avx512-vnni)");
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", fg::isa_name(fg::active_isa()));
  o.Set("bestIsa", fg::isa_name(fg::best_isa()));
  o.Set("threads", fg::default_threads());
  o.Set("channelBlock", fg::kChannelBlock);
  Napi::Array isas = Napi::Array::New(env);
  uint32_t n = 0;
  for (fg::Isa isa : fg::kAllIsas)
    if (fg::isa_supported(isa)) isas.Set(n++, fg::isa_name(isa));
  o.Set("isas", isas);
  return o;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  guard(info.Env(), [&] {
    if (info.Length() < 1) fail("setThreads: expected (n)");
    fg::set_threads(to_int(info[0], "setThreads n"));
  });
  return info.Env().Undefined();
}

Napi::Value ForceIsa(const Napi::CallbackInfo& info) {
  guard(info.Env(), [&] {
    if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) {
      fg::force_isa(fg::best_isa());
      return;
    }
    if (!info[0].IsString()) fail("forceIsa: expected an ISA name or null");
    fg::force_isa(parse_isa(info[0].As<Napi::String>().Utf8Value()));
  });
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New<Info>(env, "info"));
  exports.Set("setThreads", Napi::Function::New<SetThreads>(env, "setThreads"));
  exports.Set("forceIsa", Napi::Function::New<ForceIsa>(env, "forceIsa"));
  exports.Set("Conv", ConvWrap::Init(env));
  exports.Set("Add", AddWrap::Init(env));
  exports.Set("MaxPool", MaxPoolWrap::Init(env, "MaxPool"));
  exports.Set("AvgPool", AvgPoolWrap::Init(env, "AvgPool"));
  exports.Set("Pad", PadWrap::Init(env, "Pad"));
  exports.Set("Mean", MeanWrap::Init(env, "Mean"));
  exports.Set("Fc", FcWrap::Init(env));
  exports.Set("Network", NetworkWrap::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(facegate_kernels, Init)
