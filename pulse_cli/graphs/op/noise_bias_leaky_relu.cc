// The epilogue of MobileStyleGAN's styled convs in one pass, forward and backward:
// y = leaky_relu(x + noise + bias) for x [N, C, H, W], noise [N, 1, H, W] (one map per image,
// added to every channel) and bias (one value per channel). Paddle runs it as two broadcast adds
// and a leaky ReLU, each a full-size pass with its own copy in the backward (oneDNN's add_grad
// copies the gradient for each input), with layout reorders between them.
// The backward reads only y (its sign is the pre-activation's: the slope is positive): dx, the
// noise's gradient (summed over channels) and the bias's (summed over images and pixels).
#include <algorithm>
#include <vector>

#include "paddle/extension.h"
#include "epilogue.h"
#include "parallel.h"

namespace {

// y = leaky_relu(x + noise + bias) along one plane; max(z, slope * z) for a slope below 1, and
// restrict (the buffers never overlap) so that the compiler vectorizes it.
void Activate(const float* __restrict__ x, const float* __restrict__ noise, float bias, float slope, int64_t size,
              float* __restrict__ y) {
  for (int64_t i = 0; i < size; ++i) {
    const float z = x[i] + noise[i] + bias;
    y[i] = std::max(z, z * slope);
  }
}

struct Shape {
  int64_t images, channels, size;  // size: pixels per plane
};

Shape CheckShapes(const paddle::Tensor& x, const paddle::Tensor& noise, const paddle::Tensor& bias) {
  PD_CHECK(x.is_cpu(), "pulse_noise_bias_leaky_relu runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "pulse_noise_bias_leaky_relu takes float32");
  PD_CHECK(x.shape().size() == 4, "pulse_noise_bias_leaky_relu takes x [N, C, H, W]");
  const auto shape = x.shape();
  const Shape s{shape[0], shape[1], shape[2] * shape[3]};
  // The kernels index noise by image and pixel, bias by channel: anything shorter would be read
  // past its end.
  PD_CHECK(noise.numel() == s.images * s.size, "pulse_noise_bias_leaky_relu takes noise [N, 1, H, W]");
  PD_CHECK(bias.numel() == s.channels, "pulse_noise_bias_leaky_relu takes one bias value per channel");
  return s;
}

}  // namespace

std::vector<paddle::Tensor> NoiseBiasLeakyReluForward(const paddle::Tensor& x, const paddle::Tensor& noise,
                                                      const paddle::Tensor& bias, float slope, int threads) {
  const Shape s = CheckShapes(x, noise, bias);
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* np = noise.data<float>();
  const float* bp = bias.data<float>();
  float* yp = y.data<float>();
  ForRanges(s.images * s.channels, threads, [&](int64_t first, int64_t last) {
    for (int64_t plane = first; plane < last; ++plane) {
      Activate(xp + plane * s.size, np + (plane / s.channels) * s.size, bp[plane % s.channels], slope,
               s.size, yp + plane * s.size);
    }
  });
  return {y};
}

std::vector<paddle::Tensor> NoiseBiasLeakyReluBackward(const paddle::Tensor& y, const paddle::Tensor& noise,
                                                       const paddle::Tensor& bias, const paddle::Tensor& dy,
                                                       float slope, int threads) {
  const Shape s = CheckShapes(y, noise, bias);
  auto dx = paddle::empty(y.shape(), y.dtype(), y.place());
  auto dnoise = paddle::empty(noise.shape(), y.dtype(), y.place());
  auto dbias = paddle::empty(bias.shape(), y.dtype(), y.place());
  const float* yp = y.data<float>();
  const float* gp = dy.data<float>();
  float* dxp = dx.data<float>();
  float* dnp = dnoise.data<float>();
  std::vector<double> bias_sums(s.channels, 0.0);
  for (int64_t image = 0; image < s.images; ++image) {
    const int64_t offset = image * s.channels * s.size;
    DifferentiateImage(yp + offset, gp + offset, slope, s.channels, s.size, threads, dxp + offset,
                       dnp + image * s.size, bias_sums);
  }
  float* dbp = dbias.data<float>();
  for (int64_t c = 0; c < s.channels; ++c) dbp[c] = static_cast<float>(bias_sums[c]);
  return {dx, dnoise, dbias};
}

std::vector<std::vector<int64_t>> NoiseBiasLeakyReluShapes(const std::vector<int64_t>& x,
                                                           const std::vector<int64_t>& noise,
                                                           const std::vector<int64_t>& bias) {
  return {x};
}

std::vector<paddle::DataType> NoiseBiasLeakyReluDtypes(const paddle::DataType& x, const paddle::DataType& noise,
                                                       const paddle::DataType& bias) {
  return {x};
}

std::vector<std::vector<int64_t>> NoiseBiasLeakyReluGradShapes(const std::vector<int64_t>& y,
                                                               const std::vector<int64_t>& noise,
                                                               const std::vector<int64_t>& bias,
                                                               const std::vector<int64_t>& dy) {
  return {y, noise, bias};
}

std::vector<paddle::DataType> NoiseBiasLeakyReluGradDtypes(const paddle::DataType& y,
                                                           const paddle::DataType& noise,
                                                           const paddle::DataType& bias,
                                                           const paddle::DataType& dy) {
  return {y, y, y};
}

PD_BUILD_OP(pulse_noise_bias_leaky_relu)
    .Inputs({"X", "Noise", "Bias"})
    .Outputs({"Y"})
    .Attrs({"slope: float", "threads: int"})
    .SetKernelFn(PD_KERNEL(NoiseBiasLeakyReluForward))
    .SetInferShapeFn(PD_INFER_SHAPE(NoiseBiasLeakyReluShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(NoiseBiasLeakyReluDtypes));

PD_BUILD_GRAD_OP(pulse_noise_bias_leaky_relu)
    .Inputs({"Y", "Noise", "Bias", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Noise"), paddle::Grad("Bias")})
    .Attrs({"slope: float", "threads: int"})
    .SetKernelFn(PD_KERNEL(NoiseBiasLeakyReluBackward))
    .SetInferShapeFn(PD_INFER_SHAPE(NoiseBiasLeakyReluGradShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(NoiseBiasLeakyReluGradDtypes));
