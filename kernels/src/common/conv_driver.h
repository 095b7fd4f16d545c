// Shared by every ISA translation unit: builds the per-tile row pointers (an indirection buffer
// over the zero-point padded image, so no im2col copy) and calls the ISA's 16-channel block kernel.
// Included only by ISA TUs; the anonymous namespace gives each TU its own copy so code compiled
// with -mavx2 / +dotprod can never be picked by the linker for a baseline caller.
#pragma once

#include <cstring>

#include "common/internal.h"

namespace facegate::detail {
namespace {

// Writes rows [y0, y1) of the padded image: rows/cols outside the input hold `pad`, the rest tf(x).
template <class A, class Transform>
void prepare_image(const uint8_t* in, Shape s, int pad_top, int pad_left, int img_w, int y0, int y1, A pad,
                   Transform tf, A* img) {
  const size_t row = static_cast<size_t>(img_w) * s.c;
  const size_t left = static_cast<size_t>(pad_left) * s.c, body = static_cast<size_t>(s.w) * s.c;
  for (int y = y0; y < y1; ++y) {
    A* dst = img + y * row;
    const int iy = y - pad_top;
    if (iy < 0 || iy >= s.h) {
      for (size_t i = 0; i < row; ++i) dst[i] = pad;
      continue;
    }
    const uint8_t* src = in + static_cast<size_t>(iy) * body;
    for (size_t i = 0; i < left; ++i) dst[i] = pad;
    for (size_t i = 0; i < body; ++i) dst[left + i] = tf(src[i]);
    for (size_t i = left + body; i < row; ++i) dst[i] = pad;
  }
}

// One 16-channel block of a kernel call: packed weights, bias, multipliers, MR output pointers.
template <class W>
struct BlockRef {
  const W* w;
  const int32_t* bias;
  const float* mult;
  uint8_t* const* out;
};

// K provides: types A (image element) and W (weight element), MR (pixels per call), NB (blocks
// per call) and
//   static void block(const A* const* rows /*[kh][MR]*/, int kh, int run_len, int nb,
//                     const BlockRef<W>* blocks /*[nb], nb <= NB*/, const ConvJob& job);
// writing 16 requantized channels per block to each of its MR output pointers.
// Tasks are (tile, group of NB blocks); consecutive tasks share a tile's rows.
template <class K>
void conv_tasks(const ConvJob& j, int begin, int end) {
  using A = typename K::A;
  using W = typename K::W;
  constexpr int MR = K::MR, NB = K::NB;
  const A* img = static_cast<const A*>(j.image);
  const auto* weights = static_cast<const W*>(j.weights);
  const size_t img_row = static_cast<size_t>(j.img_w) * j.img_c;
  const int groups = (j.num_blocks + NB - 1) / NB;
  const A* rows[kMaxKernel * MR];
  uint8_t* out[NB][MR];
  BlockRef<W> refs[NB] = {};
  alignas(64) uint8_t spill[NB][MR * kChannelBlock];
  int pix[MR];
  int valid = 0, cur_tile = -1;
  for (int t = begin; t < end; ++t) {
    const int tile = t / groups, g = t % groups;
    if (tile != cur_tile) {
      cur_tile = tile;
      const int r0 = tile * MR;
      valid = j.num_rows - r0 < MR ? j.num_rows - r0 : MR;
      for (int m = 0; m < MR; ++m) {
        // Tail slots recompute pixel 0 of the tile; their results go to `spill`.
        pix[m] = m < valid ? (j.rows ? j.rows[r0 + m] : r0 + m) : pix[0];
        const int oy = pix[m] / j.out_w, ox = pix[m] % j.out_w;
        const A* base = img + static_cast<size_t>(oy) * j.stride_h * img_row +
                        static_cast<size_t>(ox) * j.stride_w * j.img_c;
        for (int ky = 0; ky < j.kh; ++ky) rows[ky * MR + m] = base + ky * img_row;
      }
    }
    const int nb = j.num_blocks - g * NB < NB ? j.num_blocks - g * NB : NB;
    int c0[NB], nc[NB];
    for (int b = 0; b < nb; ++b) {
      const int cb = j.blocks ? j.blocks[g * NB + b] : g * NB + b;
      c0[b] = cb * kChannelBlock;
      nc[b] = j.cout - c0[b] < kChannelBlock ? j.cout - c0[b] : kChannelBlock;
      for (int m = 0; m < MR; ++m)
        out[b][m] = m < valid && nc[b] == kChannelBlock ? j.out + static_cast<size_t>(pix[m]) * j.cout + c0[b]
                                                        : spill[b] + m * kChannelBlock;
      refs[b] = {weights + cb * j.block_stride, j.bias + c0[b], j.mult + c0[b], out[b]};
    }
    K::block(rows, j.kh, j.run_len, nb, refs, j);
    for (int b = 0; b < nb; ++b)
      if (nc[b] < kChannelBlock)
        for (int m = 0; m < valid; ++m)
          std::memcpy(j.out + static_cast<size_t>(pix[m]) * j.cout + c0[b], spill[b] + m * kChannelBlock, nc[b]);
  }
}

}  // namespace
}  // namespace facegate::detail
