// The backward of MobileStyleGAN's styled-conv epilogue, y = leaky_relu(x + noise + bias), along
// one plane, shared by the compiled epilogue (noise_bias_leaky_relu.cc) and the compiled styled
// conv that ends with it (styled_conv.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "parallel.h"

// One plane's stretch of the backward: dx = dy * (1 or slope, by the sign of y), added into the
// noise's gradient; returns the stretch's sum, for the bias's gradient. The sum runs in Lanes
// partial sums (one running sum would keep the compiler from vectorizing the loop), and the
// slope is a factor, not a branch between two products (which GCC leaves unvectorized).
inline constexpr int64_t Lanes = 16;
inline constexpr int64_t Block = 2048;  // pixels: 8 KiB of noise gradient

inline float Differentiate(const float* __restrict__ y, const float* __restrict__ dy, float slope, int64_t size,
                    float* __restrict__ dx, float* __restrict__ dnoise) {
  float lanes[Lanes] = {};
  int64_t i = 0;
  for (; i + Lanes <= size; i += Lanes) {
    for (int64_t j = 0; j < Lanes; ++j) {
      const float g = dy[i + j] * (y[i + j] > 0.0f ? 1.0f : slope);
      dx[i + j] = g;
      dnoise[i + j] += g;
      lanes[j] += g;
    }
  }
  float sum = 0.0f;
  for (; i < size; ++i) {
    const float g = dy[i] * (y[i] > 0.0f ? 1.0f : slope);
    dx[i] = g;
    dnoise[i] += g;
    sum += g;
  }
  for (int64_t j = 0; j < Lanes; ++j) sum += lanes[j];
  return sum;
}

// One image's backward over its [channels, size] planes: dx, the gradient of its noise map (summed
// over the channels) and, added to bias_sums, each channel's sum (the bias's gradient). Threads
// take pixel ranges, a block of pixels at a time: the block's noise gradient stays in the L1 cache
// while every channel's stretch of the block is read along its plane.
inline void DifferentiateImage(const float* y, const float* dy, float slope, int64_t channels, int64_t size,
                               int threads, float* dx, float* dnoise, std::vector<double>& bias_sums) {
  std::mutex bias_lock;
  ForRanges(size, threads, [&](int64_t first, int64_t last) {
    std::vector<double> sums(channels, 0.0);
    for (int64_t start = first; start < last; start += Block) {
      const int64_t length = std::min(Block, last - start);
      std::fill(dnoise + start, dnoise + start + length, 0.0f);
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t offset = c * size + start;
        sums[c] += Differentiate(y + offset, dy + offset, slope, length, dx + offset, dnoise + start);
      }
    }
    std::lock_guard<std::mutex> guard(bias_lock);
    for (int64_t c = 0; c < channels; ++c) bias_sums[c] += sums[c];
  });
}
