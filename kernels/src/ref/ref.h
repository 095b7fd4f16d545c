// Scalar reference implementations: the definition of correct for every fast path.
#pragma once

#include "facegate/kernels.h"

namespace facegate::ref {

void conv(const ConvDesc& d, const int8_t* weights, const int32_t* bias, const float* mult,
          const uint8_t* in, Shape in_shape, uint8_t* out, const ConvActive& active);
void add(const AddDesc& d, const uint8_t* a, const uint8_t* b, uint8_t* out, size_t n);
void maxpool(const PoolDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);
void avgpool(const AvgPoolDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);
void pad(const PadDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);
void mean(const MeanDesc& d, const uint8_t* in, Shape in_shape, uint8_t* out);
void gate_row(const int16_t* const* rows, int kh, const int16_t* w, int run, int step, int n, int32_t* out);
void fc(int cin, int cout, int zp_in, const int8_t* weights, const float* scale, const float* bias,
        const uint8_t* in, float* out);

}  // namespace facegate::ref
