// Public C++ API of the facegate int8 kernels (NHWC uint8 activations, OHWI int8 weights).
// Semantics follow ONNX QLinearConv / QDQ; see docs/kernels.md for the exact formulas.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace facegate {

enum class Isa { Scalar = 0, Neon = 1, NeonDot = 2, Avx2 = 3, AvxVnni = 4, Avx512Vnni = 5 };
// Slowest to fastest within each architecture.
constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Neon, Isa::NeonDot, Isa::Avx2, Isa::AvxVnni, Isa::Avx512Vnni};
constexpr int kNumIsas = 6;

const char* isa_name(Isa isa);
bool isa_supported(Isa isa);
Isa best_isa();
Isa active_isa();
// For tests and benchmarks: every op then runs the given path. Throws if the CPU lacks it.
void force_isa(Isa isa);
// Default thread count used when an op or network is run with threads == 0.
void set_threads(int n);
int default_threads();

// Output channels are computed in blocks of this many; active channel lists name block indices.
constexpr int kChannelBlock = 16;

struct Shape {
  int h = 0, w = 0, c = 0;
  size_t size() const { return static_cast<size_t>(h) * w * c; }
};

struct ConvDesc {
  int cin = 0, cout = 0, kh = 1, kw = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int zp_in = 0, zp_out = 0;
  bool relu = false;
};

// Optional subsets of a conv's output: pixel indices (oy * out_w + ox) and 16-channel block indices.
// Outputs outside the subsets are written as zp_out (real 0, what a ReLU-zero predictor claims).
struct ConvActive {
  const int32_t* rows = nullptr;
  int num_rows = -1;  // -1: all output pixels
  const int32_t* channel_blocks = nullptr;
  int num_channel_blocks = -1;  // -1: all blocks
};

class Conv {
 public:
  // weights: [cout][kh][kw][cin] int8 in [-127, 127]; bias: int32 [cout]; multipliers: float [cout]
  // (s_in * s_w[c] / s_out). Weights are packed for the active ISA here, other ISAs lazily.
  Conv(const ConvDesc& desc, const int8_t* weights, const int32_t* bias, const float* multipliers);
  ~Conv();
  Conv(const Conv&) = delete;
  Conv& operator=(const Conv&) = delete;

  const ConvDesc& desc() const;
  Shape out_shape(Shape in) const;  // throws std::invalid_argument
  void run(const uint8_t* in, Shape in_shape, uint8_t* out, const ConvActive& active = {},
           int threads = 0) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// y = sat(nearbyint(mult_a * (a - zp_a) + mult_b * (b - zp_b)) + zp_out), mult_x = s_x / s_out.
struct AddDesc {
  int zp_a = 0, zp_b = 0, zp_out = 0;
  float mult_a = 1.f, mult_b = 1.f;
  bool relu = false;
};
void add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n, int threads = 0);

struct PoolDesc {
  int kh = 2, kw = 2, stride_h = 2, stride_w = 2;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};
Shape pool_out_shape(const PoolDesc& d, Shape in);
// Padded taps are ignored (ONNX MaxPool pads with -inf).
void maxpool(const PoolDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);

// Average over the in-bounds taps (count_include_pad = 0):
// y = sat(nearbyint(float(sum(x - zp_in)) * (mult / float(count))) + zp_out), mult = s_in / s_out.
struct AvgPoolDesc {
  PoolDesc pool;
  int zp_in = 0, zp_out = 0;
  float mult = 1.f;
};
void avgpool(const AvgPoolDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);

// Pads H, W and C with `value` (the zero point, i.e. real 0).
struct PadDesc {
  int top = 0, left = 0, front = 0, bottom = 0, right = 0, back = 0;
  int value = 0;
};
Shape pad_out_shape(const PadDesc& d, Shape in);
void pad(const PadDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);

// ONNX QuantizeLinear of a float NCHW image (batch 1) into NHWC uint8:
// y = sat(nearbyint(x / scale) + zp), x / scale in float32, ties to even.
void quantize_nchw(const float* in, Shape shape, float scale, int zp, uint8_t* out);

// Global average over H and W, same rounding as avgpool; output shape 1x1xC.
struct MeanDesc {
  int zp_in = 0, zp_out = 0;
  float mult = 1.f;
};
void mean(const MeanDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);

// y[c] = float(sum_k (x[k] - zp_in) * w[c][k]) * scale[c] + bias[c]; scale = s_in * s_w[c].
class Fc {
 public:
  Fc(int cin, int cout, int zp_in, const int8_t* weights, const float* scale, const float* bias);
  int cin() const { return cin_; }
  int cout() const { return cout_; }
  void run(const uint8_t* in, float* out) const;

 private:
  int cin_, cout_, zp_in_;
  std::vector<int8_t> w_;
  std::vector<float> scale_, bias_;
};

// A ReLU-zero gate (docs/relu-zero.md): which output pixels of the gated conv to compute. As the ONNX
// pattern computes it: a one-output-channel predictor conv over the conv's input, requantized like any
// conv output (QLinearConv, zero point zp_logit); dequantized and averaged over tile x tile blocks (ceil
// mode: a partial edge tile averages its in-bounds pixels); each tile's value spread over its pixels,
// cropped to out_h x out_w; optionally requantized to the decision tensor's parameters; open where the
// value exceeds `threshold`. Output: uint8 [out_h, out_w, 1], 1 = compute, 0 = the output is real 0.
struct GateDesc {
  int cin = 0, kh = 1, kw = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int zp_in = 0;
  int32_t bias = 0;  // at the accumulator scale s_in * s_w
  float mult = 1.f;  // s_in * s_w / scale_logit
  float scale_logit = 1.f;
  int zp_logit = 0;
  int tile = 1;
  int out_h = 0, out_w = 0;
  bool requantize = false;
  float scale_decision = 1.f;
  int zp_decision = 0;
  float threshold = 0.f;
};

class Gate {
 public:
  // weights: [kh][kw][cin] int8 in [-127, 127].
  Gate(const GateDesc& desc, const int8_t* weights);
  const GateDesc& desc() const { return d_; }
  Shape out_shape(Shape in) const;  // {out_h, out_w, 1}; throws std::invalid_argument
  // Multiply-accumulates of one run (every predictor pixel, padded taps included).
  uint64_t macs(Shape in) const;
  void run(const uint8_t* in, Shape in_shape, uint8_t* mask, int threads = 0) const;

 private:
  GateDesc d_;
  std::vector<int16_t> w_;
};

// A whole forward pass in C++. Tensors are numbered 0..n-1 and each is produced exactly once;
// ops are given in execution order and shapes are inferred (and checked) as ops are added.
class Network {
 public:
  Network(int num_tensors, int input_id, Shape input_shape);
  ~Network();
  // mask: a gate's output of the conv's output size; the conv is computed only where it is non-zero
  // (and not at all when it is all 0), widened first by a mask_dilate x mask_dilate max (odd, centred:
  // a block's conv1 is needed wherever its conv2's window reads). mask -1: dense.
  void add_conv(int in, int out, std::shared_ptr<const Conv> conv, int mask = -1, int mask_dilate = 1);
  void add_gate(int in, int out, std::shared_ptr<const Gate> gate);
  void add_add(int a, int b, int out, const AddDesc& d);
  void add_maxpool(int in, int out, const PoolDesc& d);
  void add_avgpool(int in, int out, const AvgPoolDesc& d);
  void add_pad(int in, int out, const PadDesc& d);
  void add_mean(int in, int out, const MeanDesc& d);
  void add_fc(int in, int out, std::shared_ptr<const Fc> fc);

  int num_tensors() const;
  int input_id() const;
  bool defined(int id) const;
  Shape shape(int id) const;
  bool is_float(int id) const;
  size_t num_ops() const;
  // Runs every op; tensor buffers stay valid until the next run.
  void run(const uint8_t* input, int threads = 0);
  // Runs n inputs. With threads > 1 the items run side by side, each on one thread (a face and its
  // mirror: two single-threaded passes beat one pass split per layer).
  void run_batch(const uint8_t* const* inputs, int n, int threads = 0);
  // Multiply-accumulates of the last run (summed over its batch): all executed (convs at their
  // computed pixels, gate predictors, fc), the convs' share of that, and what the convs would cost
  // computed densely.
  struct Macs {
    uint64_t executed = 0, conv = 0, conv_dense = 0;
  };
  Macs last_run_macs() const;
  // Wall time of each op (in add order) in the last run (its first item), in microseconds: the
  // per-layer profile.
  const std::vector<double>& last_run_op_micros() const;
  // A tensor of the last run; `item` picks the batch item (items past the last batch's size hold
  // an earlier batch's values).
  const uint8_t* u8(int id, int item = 0) const;
  const float* f32(int id, int item = 0) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace facegate
