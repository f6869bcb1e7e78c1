// MobileStyleGAN's styled conv in one compiled op, forward and backward, for a search (its
// parameters frozen): a modulated depthwise 3x3 conv, a pointwise 1x1 conv, then noise, bias and
// leaky ReLU,
//   t = depthwise3x3(x, w_dw * modulation),  z = w_pw t,  y = leaky_relu(z + noise + bias),
// for x [N, C, H, W], w_dw [C, 1, 3, 3], modulation [N, C], w_pw [O, C, 1, 1], noise [N, 1, H, W],
// bias O values: y [N, O, H, W]. The gradients are x's, the modulation's and the noise's.
// Why: under to_static + oneDNN these were two oneDNN convs and Paddle's ops between reshapes, and
// oneDNN's convs run channels-last forward and blocked backward: reorders of every full-size
// tensor into and out of those layouts (and of each one the backward keeps) were 330 ms of the
// 1024 px step against 187 ms of convolution. Here every tensor stays in Paddle's plain layout,
// the depthwise conv is a stencil along rows, the pointwise conv one GEMM an image (oneDNN's
// dnnl_sgemm, from the libdnnl Paddle has loaded), and only x and y are kept for the backward.
#include <dlfcn.h>

#include <memory>
#include <vector>

#include "epilogue.h"
#include "paddle/extension.h"
#include "parallel.h"

namespace {

// oneDNN's row-major sgemm, C = alpha op(A) op(B) + beta C (dnnl_sgemm, its C API).
using Sgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                      float, float*, int64_t);

Sgemm OneDnnSgemm() {
  static const Sgemm sgemm = [] {
    void* library = dlopen("libdnnl.so.3", RTLD_LAZY | RTLD_NOLOAD);  // Paddle's, loaded with it
    return library == nullptr ? nullptr : reinterpret_cast<Sgemm>(dlsym(library, "dnnl_sgemm"));
  }();
  PD_CHECK(sgemm != nullptr, "pulse_styled_conv needs oneDNN's dnnl_sgemm (libdnnl.so.3), which is not loaded");
  return sgemm;
}

// c [m, n] = a [m, k] b [k, n], row-major. (A transposed a runs half as fast: transpose it first.)
void Gemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  PD_CHECK(OneDnnSgemm()('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n) == 0, "pulse_styled_conv: dnnl_sgemm failed");
}

// out[j] += k[0] src[j - 1] + k[1] src[j] + k[2] src[j + 1], zero outside the row.
void AddRowTaps(const float* __restrict__ src, const float* k, int64_t width, float* __restrict__ out) {
  if (width == 1) {
    out[0] += k[1] * src[0];
    return;
  }
  out[0] += k[1] * src[0] + k[2] * src[1];
  for (int64_t j = 1; j < width - 1; ++j) out[j] += k[0] * src[j - 1] + k[1] * src[j] + k[2] * src[j + 1];
  out[width - 1] += k[0] * src[width - 2] + k[1] * src[width - 1];
}

// Row i of the 3x3 cross-correlation of plane x with k (row-major taps), zero padding of 1.
void CorrelateRow(const float* x, const float k[9], int64_t i, int64_t height, int64_t width, float* out) {
  std::fill(out, out + width, 0.0f);
  for (int64_t a = 0; a < 3; ++a) {
    const int64_t row = i + a - 1;
    if (row >= 0 && row < height) AddRowTaps(x + row * width, k + 3 * a, width, out);
  }
}

// y = the 3x3 cross-correlation of plane x with k: a conv2d's, padding 1.
void Correlate(const float* x, const float k[9], int64_t height, int64_t width, float* y) {
  for (int64_t i = 0; i < height; ++i) CorrelateRow(x, k, i, height, width, y + i * width);
}

// g[3a + b] += sum over row i of dt of dt(i, j) x(i + a - 1, j + b - 1): row i's share of the
// gradient of the taps.
void AddRowTapGradients(const float* x, const float* __restrict__ d, int64_t i, int64_t height, int64_t width,
                        double g[9]) {
  for (int64_t a = 0; a < 3; ++a) {
    const int64_t row = i + a - 1;
    if (row < 0 || row >= height) continue;
    const float* __restrict__ s = x + row * width;
    float left = 0.0f, centre = 0.0f, right = 0.0f;
#pragma omp simd reduction(+ : left)
    for (int64_t j = 1; j < width; ++j) left += d[j] * s[j - 1];
#pragma omp simd reduction(+ : centre)
    for (int64_t j = 0; j < width; ++j) centre += d[j] * s[j];
#pragma omp simd reduction(+ : right)
    for (int64_t j = 0; j < width - 1; ++j) right += d[j] * s[j + 1];
    g[3 * a] += left;
    g[3 * a + 1] += centre;
    g[3 * a + 2] += right;
  }
}

// The depthwise conv's backward for one plane, in one pass over dt's rows: dx, the correlation of
// dt with the taps turned half a circle, and (added to g) the gradient of the taps.
void DifferentiatePlane(const float* x, const float* dt, const float k[9], int64_t height, int64_t width, float* dx,
                        double g[9]) {
  float flipped[9];
  for (int t = 0; t < 9; ++t) flipped[t] = k[8 - t];
  for (int64_t i = 0; i < height; ++i) {
    CorrelateRow(dt, flipped, i, height, width, dx + i * width);
    AddRowTapGradients(x, dt + i * width, i, height, width, g);
  }
}

struct Shape {
  int64_t images, channels, outputs, height, width, size;  // size: pixels per plane
};

Shape CheckShapes(const paddle::Tensor& x, const paddle::Tensor& depthwise, const paddle::Tensor& modulation,
                  const paddle::Tensor& pointwise) {
  PD_CHECK(x.is_cpu(), "pulse_styled_conv runs on the CPU only");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, "pulse_styled_conv takes float32");
  PD_CHECK(x.shape().size() == 4 && pointwise.shape().size() == 4, "pulse_styled_conv takes x [N, C, H, W]");
  const auto shape = x.shape();
  const Shape s{shape[0], shape[1], pointwise.shape()[0], shape[2], shape[3], shape[2] * shape[3]};
  // The kernels index each of these by channel and image: anything shorter would be read past its end.
  PD_CHECK(depthwise.numel() == s.channels * 9, "pulse_styled_conv takes depthwise weights [C, 1, 3, 3]");
  PD_CHECK(modulation.numel() == s.images * s.channels, "pulse_styled_conv takes a modulation [N, C]");
  PD_CHECK(pointwise.numel() == s.outputs * s.channels, "pulse_styled_conv takes pointwise weights [O, C, 1, 1]");
  return s;
}

// Image n's channel c taps: the depthwise weights times its modulation.
void ModulatedTaps(const float* depthwise, const float* modulation, const Shape& s, int64_t n, int64_t c,
                   float k[9]) {
  for (int t = 0; t < 9; ++t) k[t] = depthwise[c * 9 + t] * modulation[n * s.channels + c];
}

}  // namespace

std::vector<paddle::Tensor> StyledConvForward(const paddle::Tensor& x, const paddle::Tensor& depthwise,
                                              const paddle::Tensor& modulation, const paddle::Tensor& pointwise,
                                              const paddle::Tensor& noise, const paddle::Tensor& bias, float slope,
                                              int threads) {
  const Shape s = CheckShapes(x, depthwise, modulation, pointwise);
  PD_CHECK(noise.numel() == s.images * s.size, "pulse_styled_conv takes noise [N, 1, H, W]");
  PD_CHECK(bias.numel() == s.outputs, "pulse_styled_conv takes one bias value per output channel");
  auto y = paddle::empty({s.images, s.outputs, s.height, s.width}, x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* wp = depthwise.data<float>();
  const float* mp = modulation.data<float>();
  const float* np = noise.data<float>();
  const float* bp = bias.data<float>();
  float* yp = y.data<float>();
  std::unique_ptr<float[]> t(new float[s.channels * s.size]);  // one image's depthwise output
  for (int64_t n = 0; n < s.images; ++n) {
    ForRanges(s.channels, threads, [&](int64_t first, int64_t last) {
      for (int64_t c = first; c < last; ++c) {
        float k[9];
        ModulatedTaps(wp, mp, s, n, c, k);
        Correlate(xp + (n * s.channels + c) * s.size, k, s.height, s.width, t.get() + c * s.size);
      }
    });
    float* z = yp + n * s.outputs * s.size;
    Gemm(s.outputs, s.size, s.channels, pointwise.data<float>(), t.get(), z);
    const float* __restrict__ image_noise = np + n * s.size;
    ForRanges(s.outputs, threads, [&](int64_t first, int64_t last) {
      for (int64_t o = first; o < last; ++o) {
        float* __restrict__ plane = z + o * s.size;
        for (int64_t i = 0; i < s.size; ++i) {
          const float value = plane[i] + image_noise[i] + bp[o];
          plane[i] = std::max(value, value * slope);
        }
      }
    });
  }
  return {y};
}

std::vector<paddle::Tensor> StyledConvBackward(const paddle::Tensor& x, const paddle::Tensor& depthwise,
                                               const paddle::Tensor& modulation, const paddle::Tensor& pointwise,
                                               const paddle::Tensor& y, const paddle::Tensor& dy, float slope,
                                               int threads) {
  const Shape s = CheckShapes(x, depthwise, modulation, pointwise);
  PD_CHECK(y.numel() == s.images * s.outputs * s.size && dy.numel() == y.numel(),
           "pulse_styled_conv takes an output and its gradient of [N, O, H, W]");
  auto dx = paddle::empty(x.shape(), x.dtype(), x.place());
  auto dmodulation = paddle::empty(modulation.shape(), x.dtype(), x.place());
  auto dnoise = paddle::empty({s.images, 1, s.height, s.width}, x.dtype(), x.place());
  const float* xp = x.data<float>();
  const float* wp = depthwise.data<float>();
  const float* mp = modulation.data<float>();
  float* dxp = dx.data<float>();
  float* dmp = dmodulation.data<float>();
  std::unique_ptr<float[]> dz(new float[s.outputs * s.size]);  // one image's, before the epilogue
  std::unique_ptr<float[]> dt(new float[s.channels * s.size]);  // and before the pointwise conv
  std::vector<double> bias_sums(s.outputs, 0.0);  // the bias is frozen: its gradient is not handed on
  std::vector<float> transposed(s.channels * s.outputs);  // the pointwise weights [C, O]
  const float* pw = pointwise.data<float>();
  for (int64_t o = 0; o < s.outputs; ++o) {
    for (int64_t c = 0; c < s.channels; ++c) transposed[c * s.outputs + o] = pw[o * s.channels + c];
  }
  for (int64_t n = 0; n < s.images; ++n) {
    const int64_t offset = n * s.outputs * s.size;
    DifferentiateImage(y.data<float>() + offset, dy.data<float>() + offset, slope, s.outputs, s.size, threads,
                       dz.get(), dnoise.data<float>() + n * s.size, bias_sums);
    Gemm(s.channels, s.size, s.outputs, transposed.data(), dz.get(), dt.get());
    ForRanges(s.channels, threads, [&](int64_t first, int64_t last) {
      for (int64_t c = first; c < last; ++c) {
        float k[9];
        ModulatedTaps(wp, mp, s, n, c, k);
        const int64_t plane = (n * s.channels + c) * s.size;
        double g[9] = {};
        DifferentiatePlane(xp + plane, dt.get() + c * s.size, k, s.height, s.width, dxp + plane, g);
        double dm = 0.0;  // the taps are weights times the modulation
        for (int t = 0; t < 9; ++t) dm += g[t] * wp[c * 9 + t];
        dmp[n * s.channels + c] = static_cast<float>(dm);
      }
    });
  }
  return {dx, dmodulation, dnoise};
}

std::vector<std::vector<int64_t>> StyledConvShapes(const std::vector<int64_t>& x, const std::vector<int64_t>& depthwise,
                                                   const std::vector<int64_t>& modulation,
                                                   const std::vector<int64_t>& pointwise,
                                                   const std::vector<int64_t>& noise, const std::vector<int64_t>& bias) {
  return {{x[0], pointwise[0], x[2], x[3]}};
}

std::vector<paddle::DataType> StyledConvDtypes(const paddle::DataType& x, const paddle::DataType& depthwise,
                                               const paddle::DataType& modulation, const paddle::DataType& pointwise,
                                               const paddle::DataType& noise, const paddle::DataType& bias) {
  return {x};
}

std::vector<std::vector<int64_t>> StyledConvGradShapes(const std::vector<int64_t>& x,
                                                       const std::vector<int64_t>& depthwise,
                                                       const std::vector<int64_t>& modulation,
                                                       const std::vector<int64_t>& pointwise,
                                                       const std::vector<int64_t>& y, const std::vector<int64_t>& dy) {
  return {x, modulation, {x[0], 1, x[2], x[3]}};
}

std::vector<paddle::DataType> StyledConvGradDtypes(const paddle::DataType& x, const paddle::DataType& depthwise,
                                                   const paddle::DataType& modulation,
                                                   const paddle::DataType& pointwise, const paddle::DataType& y,
                                                   const paddle::DataType& dy) {
  return {x, x, x};
}

PD_BUILD_OP(pulse_styled_conv)
    .Inputs({"X", "Depthwise", "Modulation", "Pointwise", "Noise", "Bias"})
    .Outputs({"Y"})
    .Attrs({"slope: float", "threads: int"})
    .SetKernelFn(PD_KERNEL(StyledConvForward))
    .SetInferShapeFn(PD_INFER_SHAPE(StyledConvShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(StyledConvDtypes));

PD_BUILD_GRAD_OP(pulse_styled_conv)
    .Inputs({"X", "Depthwise", "Modulation", "Pointwise", "Y", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Modulation"), paddle::Grad("Noise")})
    .Attrs({"slope: float", "threads: int"})
    .SetKernelFn(PD_KERNEL(StyledConvBackward))
    .SetInferShapeFn(PD_INFER_SHAPE(StyledConvGradShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(StyledConvGradDtypes));
