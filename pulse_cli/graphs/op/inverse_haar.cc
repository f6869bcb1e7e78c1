// MobileStyleGAN's inverse Haar (db1) wavelet transform of scaled bands, forward and backward, in
// one pass each way: x [N, 4C, h, w] in MobileStyleGAN's band layout (the low bands of the C
// channels, then their three high bands, channel c's at C + 3c, C + 3c + 1, C + 3c + 2), each band
// first multiplied by its scale [N, 4C] (the style modulation), to y [N, C, 2h, 2w]: the 2x2 cell
// of y at (i, j) is half a +- sum of the four scaled bands at (i, j),
//   y(2i + a, 2j + b) = (low + s_a h0 + s_b h1 + s_a s_b h2) / 2,   s_0 = 1, s_1 = -1.
// In Paddle's ops it is a regrouping of the bands (slices, a concat), a grouped 1x1 conv of four
// channels a group and a pixel shuffle, each a full-size pass with layout reorders between them.
#include <vector>

#include "paddle/extension.h"
#include "parallel.h"

namespace {

struct Shape {
  int64_t images, channels, height, width;  // channels: C, a quarter of x's
};

Shape CheckShapes(const paddle::Tensor& x, const paddle::Tensor& scale) {
  PD_CHECK(x.is_cpu(), "pulse_inverse_haar runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "pulse_inverse_haar takes float32");
  PD_CHECK(x.shape().size() == 4 && x.shape()[1] % 4 == 0, "pulse_inverse_haar takes x [N, 4C, h, w]");
  const auto shape = x.shape();
  // The kernels read a scale for each band of each image: anything shorter would be read past its end.
  PD_CHECK(scale.numel() == shape[0] * shape[1], "pulse_inverse_haar takes one scale per image and band");
  return {shape[0], shape[1] / 4, shape[2], shape[3]};
}

// The four bands of one output plane (image n, channel c): their offsets in x and in scale.
struct Plane {
  int64_t band[4];
};

Plane PlaneOf(const Shape& s, int64_t plane) {
  const int64_t n = plane / s.channels, c = plane % s.channels;
  const int64_t first = n * 4 * s.channels;  // image n's first band
  return {{first + c, first + s.channels + 3 * c, first + s.channels + 3 * c + 1, first + s.channels + 3 * c + 2}};
}

// One row of cells forward; k: the four bands' scales, halved.
void Synthesize(const float* __restrict__ low, const float* __restrict__ h0, const float* __restrict__ h1,
                const float* __restrict__ h2, const float k[4], int64_t width, float* __restrict__ top,
                float* __restrict__ bottom) {
  for (int64_t j = 0; j < width; ++j) {
    const float l = k[0] * low[j], a = k[1] * h0[j], b = k[2] * h1[j], d = k[3] * h2[j];
    top[2 * j] = l + a + b + d;
    top[2 * j + 1] = l + a - b - d;
    bottom[2 * j] = l - a + b - d;
    bottom[2 * j + 1] = l - a - b + d;
  }
}

// One row of cells backward: the gradients of the scaled bands (l, a, b, d below), times the scales
// m for dx, and, added to sums, times the bands for the scales' gradients.
void Analyze(const float* __restrict__ low, const float* __restrict__ h0, const float* __restrict__ h1,
             const float* __restrict__ h2, const float* __restrict__ top, const float* __restrict__ bottom,
             const float m[4], int64_t width, float* __restrict__ dlow, float* __restrict__ dh0,
             float* __restrict__ dh1, float* __restrict__ dh2, double sums[4]) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t j = 0; j < width; ++j) {
    const float g00 = top[2 * j], g01 = top[2 * j + 1], g10 = bottom[2 * j], g11 = bottom[2 * j + 1];
    const float l = 0.5f * (g00 + g01 + g10 + g11), a = 0.5f * (g00 + g01 - g10 - g11);
    const float b = 0.5f * (g00 - g01 + g10 - g11), d = 0.5f * (g00 - g01 - g10 + g11);
    dlow[j] = m[0] * l;
    dh0[j] = m[1] * a;
    dh1[j] = m[2] * b;
    dh2[j] = m[3] * d;
    s0 += low[j] * l;
    s1 += h0[j] * a;
    s2 += h1[j] * b;
    s3 += h2[j] * d;
  }
  sums[0] += s0;
  sums[1] += s1;
  sums[2] += s2;
  sums[3] += s3;
}

}  // namespace

std::vector<paddle::Tensor> InverseHaarForward(const paddle::Tensor& x, const paddle::Tensor& scale, int threads) {
  const Shape s = CheckShapes(x, scale);
  auto y = paddle::empty({s.images, s.channels, 2 * s.height, 2 * s.width}, x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* sp = scale.data<float>();
  float* yp = y.data<float>();
  const int64_t size = s.height * s.width;
  ForRanges(s.images * s.channels, threads, [&](int64_t first, int64_t last) {
    for (int64_t plane = first; plane < last; ++plane) {
      const Plane p = PlaneOf(s, plane);
      const float k[4] = {0.5f * sp[p.band[0]], 0.5f * sp[p.band[1]], 0.5f * sp[p.band[2]], 0.5f * sp[p.band[3]]};
      for (int64_t i = 0; i < s.height; ++i) {
        float* top = yp + plane * 4 * size + 2 * i * 2 * s.width;
        Synthesize(xp + p.band[0] * size + i * s.width, xp + p.band[1] * size + i * s.width,
                   xp + p.band[2] * size + i * s.width, xp + p.band[3] * size + i * s.width, k, s.width, top,
                   top + 2 * s.width);
      }
    }
  });
  return {y};
}

std::vector<paddle::Tensor> InverseHaarBackward(const paddle::Tensor& x, const paddle::Tensor& scale,
                                                const paddle::Tensor& dy, int threads) {
  const Shape s = CheckShapes(x, scale);
  auto dx = paddle::empty(x.shape(), x.dtype(), x.place());
  auto dscale = paddle::empty(scale.shape(), x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* sp = scale.data<float>();
  const float* gp = dy.data<float>();
  float* dxp = dx.data<float>();
  float* dsp = dscale.data<float>();
  const int64_t size = s.height * s.width;
  // Each plane owns its four bands' scales: no two threads write one.
  ForRanges(s.images * s.channels, threads, [&](int64_t first, int64_t last) {
    for (int64_t plane = first; plane < last; ++plane) {
      const Plane p = PlaneOf(s, plane);
      const float m[4] = {sp[p.band[0]], sp[p.band[1]], sp[p.band[2]], sp[p.band[3]]};
      double sums[4] = {0.0, 0.0, 0.0, 0.0};
      for (int64_t i = 0; i < s.height; ++i) {
        const int64_t row = i * s.width;
        const float* top = gp + plane * 4 * size + 2 * i * 2 * s.width;
        Analyze(xp + p.band[0] * size + row, xp + p.band[1] * size + row, xp + p.band[2] * size + row,
                xp + p.band[3] * size + row, top, top + 2 * s.width, m, s.width, dxp + p.band[0] * size + row,
                dxp + p.band[1] * size + row, dxp + p.band[2] * size + row, dxp + p.band[3] * size + row, sums);
      }
      for (int b = 0; b < 4; ++b) dsp[p.band[b]] = static_cast<float>(sums[b]);
    }
  });
  return {dx, dscale};
}

std::vector<std::vector<int64_t>> InverseHaarShapes(const std::vector<int64_t>& x, const std::vector<int64_t>& scale) {
  return {{x[0], x[1] / 4, 2 * x[2], 2 * x[3]}};
}

std::vector<paddle::DataType> InverseHaarDtypes(const paddle::DataType& x, const paddle::DataType& scale) {
  return {x};
}

std::vector<std::vector<int64_t>> InverseHaarGradShapes(const std::vector<int64_t>& x,
                                                        const std::vector<int64_t>& scale,
                                                        const std::vector<int64_t>& dy) {
  return {x, scale};
}

std::vector<paddle::DataType> InverseHaarGradDtypes(const paddle::DataType& x, const paddle::DataType& scale,
                                                    const paddle::DataType& dy) {
  return {x, x};
}

PD_BUILD_OP(pulse_inverse_haar)
    .Inputs({"X", "Scale"})
    .Outputs({"Y"})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(InverseHaarForward))
    .SetInferShapeFn(PD_INFER_SHAPE(InverseHaarShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(InverseHaarDtypes));

PD_BUILD_GRAD_OP(pulse_inverse_haar)
    .Inputs({"X", "Scale", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Scale")})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(InverseHaarBackward))
    .SetInferShapeFn(PD_INFER_SHAPE(InverseHaarGradShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(InverseHaarGradDtypes));
