// Instance norm with its own per-plane affine, forward and backward, for x [1, P, H, W]: every
// plane is normalized on its own (mean and variance over H*W, eps inside the square root), then
// y = x_hat * weight + bias. Paddle's CPU kernels for this are single-threaded, the backward
// alone 0.4 s of a 1024 px StyleGAN search step; here the planes are shared among `threads`
// threads, and the backward takes two passes over the plane instead of Eigen's several.
#include <cmath>
#include <vector>

#include "paddle/extension.h"
#include "parallel.h"

namespace {

void CheckPlanes(const paddle::Tensor& x) {
  PD_CHECK(x.is_cpu(), "pulse_instance_norm runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "pulse_instance_norm takes float32");
  PD_CHECK(x.shape().size() == 4, "pulse_instance_norm takes [N, C, H, W]");
}

}  // namespace

std::vector<paddle::Tensor> InstanceNormForward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                                const paddle::Tensor& bias, float eps, int threads) {
  CheckPlanes(x);
  const auto shape = x.shape();
  const int64_t planes = shape[0] * shape[1];
  const int64_t size = shape[2] * shape[3];
  // The kernel indexes weight and bias by plane: anything shorter would be read past its end.
  PD_CHECK(weight.numel() == planes && bias.numel() == planes,
           "pulse_instance_norm takes a weight and a bias of one value per plane (N * C)");
  auto y = paddle::empty(shape, x.dtype(), x.place());
  auto mean = paddle::empty({planes}, x.dtype(), x.place());
  auto rstd = paddle::empty({planes}, x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* w = weight.data<float>();
  const float* b = bias.data<float>();
  float* yp = y.data<float>();
  float* mp = mean.data<float>();
  float* rp = rstd.data<float>();
  ForRanges(planes, threads, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) {
      const float* xs = xp + p * size;
      double sum = 0.0;
      for (int64_t i = 0; i < size; ++i) sum += xs[i];
      const float m = static_cast<float>(sum / size);
      double squares = 0.0;
      for (int64_t i = 0; i < size; ++i) {
        const float d = xs[i] - m;
        squares += d * d;
      }
      const float r = 1.0f / std::sqrt(static_cast<float>(squares / size) + eps);
      mp[p] = m;
      rp[p] = r;
      // Centred first: x * scale + (b - m * scale) cancels catastrophically on a nearly
      // constant plane (large m * scale).
      const float scale = w[p] * r, shift = b[p];
      float* ys = yp + p * size;
      for (int64_t i = 0; i < size; ++i) ys[i] = (xs[i] - m) * scale + shift;
    }
  });
  return {y, mean, rstd};
}

std::vector<paddle::Tensor> InstanceNormBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                                 const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                                 const paddle::Tensor& dy, int threads) {
  CheckPlanes(x);
  const auto shape = x.shape();
  const int64_t planes = shape[0] * shape[1];
  const int64_t size = shape[2] * shape[3];
  auto dx = paddle::empty(shape, x.dtype(), x.place());
  auto dweight = paddle::empty({planes}, x.dtype(), x.place());
  auto dbias = paddle::empty({planes}, x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* gp = dy.data<float>();
  const float* w = weight.data<float>();
  const float* mp = mean.data<float>();
  const float* rp = rstd.data<float>();
  float* dxp = dx.data<float>();
  float* dwp = dweight.data<float>();
  float* dbp = dbias.data<float>();
  ForRanges(planes, threads, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) {
      const float* xs = xp + p * size;
      const float* gs = gp + p * size;
      const float m = mp[p], r = rp[p];
      double sum_g = 0.0, sum_gx = 0.0;
      for (int64_t i = 0; i < size; ++i) {
        sum_g += gs[i];
        sum_gx += gs[i] * (xs[i] - m);
      }
      const float g_sum = static_cast<float>(sum_g), g_xhat = static_cast<float>(sum_gx) * r;
      dbp[p] = g_sum;
      dwp[p] = g_xhat;
      // dx = weight * r * (g - mean(g) - x_hat * mean(g * x_hat))
      const float k = w[p] * r, g_mean = g_sum / size, gx_mean = g_xhat / size * r;
      float* d = dxp + p * size;
      for (int64_t i = 0; i < size; ++i) d[i] = k * (gs[i] - g_mean - (xs[i] - m) * gx_mean);
    }
  });
  return {dx, dweight, dbias};
}

std::vector<std::vector<int64_t>> InstanceNormShapes(const std::vector<int64_t>& x,
                                                     const std::vector<int64_t>& weight,
                                                     const std::vector<int64_t>& bias) {
  return {x, weight, weight};
}

std::vector<paddle::DataType> InstanceNormDtypes(const paddle::DataType& x, const paddle::DataType& weight,
                                                 const paddle::DataType& bias) {
  return {x, x, x};
}

std::vector<std::vector<int64_t>> InstanceNormGradShapes(const std::vector<int64_t>& x,
                                                         const std::vector<int64_t>& weight,
                                                         const std::vector<int64_t>& mean,
                                                         const std::vector<int64_t>& rstd,
                                                         const std::vector<int64_t>& dy) {
  return {x, weight, weight};
}

std::vector<paddle::DataType> InstanceNormGradDtypes(const paddle::DataType& x, const paddle::DataType& weight,
                                                     const paddle::DataType& mean, const paddle::DataType& rstd,
                                                     const paddle::DataType& dy) {
  return {x, x, x};
}

PD_BUILD_OP(pulse_instance_norm)
    .Inputs({"X", "Weight", "Bias"})
    .Outputs({"Y", "Mean", "Rstd"})
    .Attrs({"eps: float", "threads: int"})
    .SetKernelFn(PD_KERNEL(InstanceNormForward))
    .SetInferShapeFn(PD_INFER_SHAPE(InstanceNormShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(InstanceNormDtypes));

PD_BUILD_GRAD_OP(pulse_instance_norm)
    .Inputs({"X", "Weight", "Mean", "Rstd", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .Attrs({"threads: int"})
    .SetKernelFn(PD_KERNEL(InstanceNormBackward))
    .SetInferShapeFn(PD_INFER_SHAPE(InstanceNormGradShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(InstanceNormGradDtypes));
