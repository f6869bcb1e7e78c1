"""PULSE's StyleGAN 1 generator (``G_synthesis``, ``G_mapping``) as Paddle layers.

PULSE uses the lernapparat port of NVIDIA's StyleGAN; these layers have its architecture and its
state-dict names and shapes, so PULSE's ``synthesis.pt`` and ``mapping.pt`` load by name.

One definition serves dygraph, ``paddle.jit.to_static`` (with gradients to the dlatents and the
noise, oneDNN included) and paddle2onnx. Hence a few unusual choices, each explained where it is
made: nearest upscaling by stacking, the transposed conv as a conv and a pixel shuffle, linear
layers as ``einsum``, noise scaling as a 1x1 conv, the upscale's bias added by its blur, instance
norm and style modulation as one instance norm with its own affine, and in exports for Paddle
Inference leaky ReLU as ``maximum``. Graphs traced for onnxruntime (``graphs.tracing``) keep
``LeakyRelu`` and, from 512 px, upscale by nearest neighbour before the conv.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn.functional as F
from paddle import nn
from paddle.nn.initializer import Constant, Normal

from pulse_cli.graphs.op.instance_norm import instance_norm
from pulse_cli.graphs.tracing import built_for_any_batch, traced_for_onnx

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)
DLATENT_SIZE = 512
FUSED_UPSCALE_FROM = 128  # StyleGAN fuses upscale and conv for outputs of this size and more
# From this output size an ONNX export upscales by nearest neighbour, then convolves: onnxruntime
# runs the 3x3 conv at the output size (2.25x the multiply-adds) faster than the 2x2 conv, its
# single-threaded DepthToSpace and the crop (512 -> 1024 px, 32 -> 16 channels, with the blur:
# 130 against 165 ms; 256 -> 512: 97 against 106; 128 -> 256: 92 against 70).
ONNX_NEAREST_UPSCALE_FROM = 512


def leaky_relu(x: paddle.Tensor) -> paddle.Tensor:
    """Leaky ReLU 0.2: Paddle's op, which oneDNN runs forward and backward, and onnxruntime's
    ``LeakyRelu``; but in a Paddle graph built for any batch (an export for Paddle Inference),
    whose oneDNN conv + leaky ReLU fusion crashes, ``max(x, 0.2*x)``."""
    if built_for_any_batch(x) and not traced_for_onnx(x):
        return paddle.maximum(x, x * LRELU_SLOPE)
    return F.leaky_relu(x, LRELU_SLOPE)


def upscale2d(x: paddle.Tensor) -> paddle.Tensor:
    """Nearest-neighbour upscale x2 (``F.interpolate`` fails under to_static with oneDNN, even with
    an explicit size)."""
    x = paddle.stack([x, x], axis=4).flatten(3, 4)  # every column twice
    return paddle.stack([x, x], axis=3).flatten(2, 3)  # every row twice


def _half_pixel_taps(kernel: paddle.Tensor, axis: int) -> tuple[paddle.Tensor, paddle.Tensor]:
    """What a kernel (k0, k1, k2) along ``axis`` applied after a nearest x2 upscale does to two
    neighbouring inputs (m, m+1): output 2m+1 sees (m, m, m+1), so (k0+k1, k2); output 2m+2 sees
    (m, m+1, m+1), so (k0, k1+k2)."""
    k0, k1, k2 = paddle.split(kernel, 3, axis=axis)
    return paddle.concat([k0 + k1, k2], axis=axis), paddle.concat([k0, k1 + k2], axis=axis)


def upscale_conv3x3(x: paddle.Tensor, kernel: paddle.Tensor) -> paddle.Tensor:
    """``F.conv2d(upscale2d(x), kernel, padding=1)`` for a 3x3 ``kernel``, at the input's resolution.

    Every 2x2 window of the zero-padded input (rows m, m+1; columns n, n+1) determines the four
    outputs between its pixels, (2m+1+a, 2n+1+b) for a, b in {0, 1}, each with its own 2x2 kernel:
    one conv with the four kernels (as many multiply-adds as StyleGAN's transposed conv) gives
    them as channel 4o+2a+b, ``pixel_shuffle`` puts them in place, and the outer ring, which lies
    outside the image, is cut off.
    """
    phases = [
        taps for row_taps in _half_pixel_taps(kernel, axis=2) for taps in _half_pixel_taps(row_taps, axis=3)
    ]
    weight = paddle.stack(phases, axis=1).flatten(0, 1)  # [out, 4, in, 2, 2] -> [4*out, in, 2, 2]
    return F.pixel_shuffle(F.conv2d(x, weight, padding=1), 2)[:, :, 1:-1, 1:-1]


class EqualizedLinear(nn.Layer):
    """Fully connected layer with equalized learning rate: the [out, in] weight is scaled by
    He's constant (and ``lrmul``) at run time, as in PULSE's ``MyLinear`` with ``use_wscale``."""

    def __init__(self, in_dim: int, out_dim: int, gain: float = LRELU_GAIN, lrmul: float = 1.0) -> None:
        super().__init__()
        self.w_mul = gain * in_dim**-0.5 * lrmul
        self.b_mul = lrmul
        self.weight = self.create_parameter([out_dim, in_dim], default_initializer=Normal(0.0, 1.0 / lrmul))
        self.bias = self.create_parameter([out_dim], is_bias=True, default_initializer=Constant(0.0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        # einsum, not matmul: oneDNN's matmul backward crashes when the weight needs no gradient
        return paddle.einsum("bi,oi->bo", x, self.weight * self.w_mul) + self.bias * self.b_mul


class EqualizedConv2d(nn.Layer):
    """Same-padded convolution with equalized learning rate (PULSE's ``MyConv2d``)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, gain: float = LRELU_GAIN
    ) -> None:
        super().__init__()
        self.w_mul = gain * (in_channels * kernel_size**2) ** -0.5
        self.padding = kernel_size // 2
        self.weight = self.create_parameter(
            [out_channels, in_channels, kernel_size, kernel_size], default_initializer=Normal(0.0, 1.0)
        )
        self.bias = self.create_parameter([out_channels], is_bias=True, default_initializer=Constant(0.0))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.conv2d(x, self.weight * self.w_mul, self.bias, padding=self.padding)


class Blur(nn.Layer):
    """Depthwise low-pass filter with the normalized [1, 2, 1] x [1, 2, 1] kernel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = paddle.to_tensor([1.0, 2.0, 1.0])
        kernel = taps.reshape([3, 1]) * taps.reshape([1, 3])
        self.register_buffer("kernel", (kernel / kernel.sum()).reshape([1, 1, 3, 3]))
        self.channels = channels

    def forward(self, x: paddle.Tensor, bias: paddle.Tensor | None = None) -> paddle.Tensor:
        kernel = self.kernel.expand([self.channels, 1, 3, 3])
        return F.conv2d(x, kernel, bias, padding=1, groups=self.channels)


class UpscaleConv2d(nn.Layer):
    """Upscale x2, 3x3 equalized conv, blur, bias: the first conv of every block after 4x4.

    Below 128 px StyleGAN upscales by nearest neighbour, then convolves. From 128 px it uses one
    transposed conv with stride 2 and the 4x4 kernel made by summing the 3x3 kernel over 2x2
    windows. That equals nearest x2 followed by the conv with the spatially flipped 3x3 kernel,
    which ``upscale_conv3x3`` computes at the input's resolution (``conv2d_transpose`` refuses to
    train under to_static with oneDNN), except in ONNX exports from ``ONNX_NEAREST_UPSCALE_FROM``.
    """

    def __init__(self, in_channels: int, out_channels: int, resolution: int) -> None:
        super().__init__()
        self.w_mul = LRELU_GAIN * (in_channels * 9) ** -0.5
        self.fused = resolution >= FUSED_UPSCALE_FROM
        self.resolution = resolution
        self.weight = self.create_parameter(
            [out_channels, in_channels, 3, 3], default_initializer=Normal(0.0, 1.0)
        )
        self.bias = self.create_parameter([out_channels], is_bias=True, default_initializer=Constant(0.0))
        self.intermediate = Blur(out_channels)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        weight = self.weight * self.w_mul
        if self.fused:
            weight = paddle.flip(weight, axis=[2, 3])  # the transposed conv's equivalent after nearest x2
        if self.fused and not (traced_for_onnx(x) and self.resolution >= ONNX_NEAREST_UPSCALE_FROM):
            x = upscale_conv3x3(x, weight)
        else:
            x = F.conv2d(upscale2d(x), weight, padding=1)
        return self.intermediate(x, self.bias)  # the bias added by the blur conv: one op fewer


class NoiseInjection(nn.Layer):
    """Adds per-pixel noise [B, 1, H, W] scaled by a learned per-channel weight."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = self.create_parameter([channels], default_initializer=Constant(0.0))

    def forward(self, x: paddle.Tensor, noise: paddle.Tensor) -> paddle.Tensor:
        # weight * noise as a 1x1 conv from 1 to C channels: oneDNN's backward of a broadcast
        # product is slow (and wrong when both factors broadcast).
        return x + F.conv2d(noise, self.weight.reshape([-1, 1, 1, 1]))


def adaptive_instance_norm(x: paddle.Tensor, scale: paddle.Tensor, shift: paddle.Tensor) -> paddle.Tensor:
    """AdaIN: each sample's channels of x [B, C, H, W] normalized over H and W (torch's
    ``InstanceNorm2d``, eps 1e-5), then ``* scale + shift`` with a scale and shift [B, C].

    One op, forward and backward: instance norm with its own per-channel affine, over the B*C
    planes of a batch of one (a plane is normalized on its own either way, so the batch folds into
    the channels and the affine becomes per channel), compiled where it can be (``graphs.op``:
    Paddle's CPU kernels are single-threaded). It has no oneDNN kernel, and no other form does
    better under oneDNN: the backward of a broadcast subtraction or multiply-add is
    wrong or slow there, and the affine as a depthwise 1x1 conv after the norm (reshapes, layout
    reorders, a second full-size tensor) cost a 1024 px step time and peak memory (DEVELOPERS.md).
    A graph built for any batch (an export) cannot fold an unknown batch into the channels: there
    the affine broadcasts.
    """
    if built_for_any_batch(x):
        channels = x.shape[1]
        normalized = F.instance_norm(x, eps=1e-5)
        return normalized * scale.reshape([-1, channels, 1, 1]) + shift.reshape([-1, channels, 1, 1])
    batch, channels, height, width = x.shape
    planes = batch * channels
    x = instance_norm(x.reshape([1, planes, height, width]), scale.reshape([planes]), shift.reshape([planes]))
    return x.reshape([batch, channels, height, width])


class StyleModulation(nn.Layer):
    """Instance norm, then the style: a per-channel scale (+1) and shift computed from one dlatent."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.lin = EqualizedLinear(DLATENT_SIZE, channels * 2, gain=1.0)

    def forward(self, x: paddle.Tensor, dlatent: paddle.Tensor) -> paddle.Tensor:
        scale, shift = self.lin(dlatent).reshape([-1, 2, self.channels]).unbind(axis=1)
        return adaptive_instance_norm(x, scale + 1.0, shift)


class LayerEpilogue(nn.Layer):
    """What follows every conv: noise, leaky ReLU, instance norm and style modulation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.noise = NoiseInjection(channels)
        self.style_mod = StyleModulation(channels)

    def forward(self, x: paddle.Tensor, dlatent: paddle.Tensor, noise: paddle.Tensor) -> paddle.Tensor:
        x = leaky_relu(self.noise(x, noise))
        return self.style_mod(x, dlatent)


class InputBlock(nn.Layer):
    """The 4x4 block: learned constant (+ bias), epilogue, 3x3 conv, epilogue."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.const = self.create_parameter([1, channels, 4, 4], default_initializer=Constant(1.0))
        self.bias = self.create_parameter([channels], default_initializer=Constant(1.0))
        self.epi1 = LayerEpilogue(channels)
        self.conv = EqualizedConv2d(channels, channels, 3)
        self.epi2 = LayerEpilogue(channels)

    def forward(self, dlatents: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        # The constant has batch 1; adding the [B, 1, 4, 4] noise broadcasts it to the batch.
        x = self.const + self.bias.reshape([1, -1, 1, 1])
        x = self.epi1(x, dlatents[:, 0], noise[0])
        return self.epi2(self.conv(x), dlatents[:, 1], noise[1])


class SynthesisBlock(nn.Layer):
    """One resolution doubling: upscale conv, epilogue, 3x3 conv, epilogue."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int) -> None:
        super().__init__()
        self.conv0_up = UpscaleConv2d(in_channels, out_channels, resolution)
        self.epi1 = LayerEpilogue(out_channels)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)
        self.epi2 = LayerEpilogue(out_channels)

    def forward(self, x: paddle.Tensor, dlatents: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        x = self.epi1(self.conv0_up(x), dlatents[:, 0], noise[0])
        return self.epi2(self.conv1(x), dlatents[:, 1], noise[1])


class GSynthesis(nn.Layer):
    """StyleGAN's synthesis network: dlatents [B, L, 512] and L noise maps to an RGB image.

    L = 2*log2(resolution) - 2; noise ``i`` is [B, 1, r, r] with r = ``noise_resolutions[i]``.
    The output [B, 3, R, R] is roughly in [-1, 1]. A block at 2^k px has
    min(fmap_base / 2^(k-1), fmap_max) channels.
    """

    def __init__(self, resolution: int = 1024, fmap_base: int = 8192, fmap_max: int = 512) -> None:
        super().__init__()
        log2 = int(math.log2(resolution)) if resolution >= 4 else 0
        if resolution < 4 or resolution != 2**log2:
            raise ValueError(f"StyleGAN resolution must be a power of two of at least 4, got {resolution}")
        self.resolution = resolution
        self.num_layers = 2 * log2 - 2
        self.noise_resolutions = tuple(2 ** (layer // 2 + 2) for layer in range(self.num_layers))

        def channels(res_log2: int) -> int:
            return min(int(fmap_base / 2.0 ** (res_log2 - 1)), fmap_max)

        self.torgb = EqualizedConv2d(channels(log2), 3, 1, gain=1.0)
        blocks: list[tuple[str, nn.Layer]] = [("4x4", InputBlock(channels(2)))]
        for res_log2 in range(3, log2 + 1):
            size = 2**res_log2
            block = SynthesisBlock(channels(res_log2 - 1), channels(res_log2), size)
            blocks.append((f"{size}x{size}", block))
        self.blocks = nn.LayerDict(blocks)

    def forward(self, dlatents_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        if len(noise) != self.num_layers:
            raise ValueError(
                f"GSynthesis at {self.resolution} px takes {self.num_layers} noise maps, got {len(noise)}"
            )
        blocks = list(self.blocks.values())
        x = blocks[0](dlatents_in[:, 0:2], noise[0:2])
        for layer, block in zip(range(2, self.num_layers, 2), blocks[1:]):
            x = block(x, dlatents_in[:, layer : layer + 2], noise[layer : layer + 2])
        return self.torgb(x)


class GMapping(nn.Layer):
    """StyleGAN's mapping network: z [B, 512] to w [B, 512] by pixel norm and 8 dense layers
    (learning-rate multiplier 0.01, leaky ReLU 0.2), named ``dense0`` .. ``dense7`` as in PULSE."""

    num_dense = 8

    def __init__(self) -> None:
        super().__init__()
        for i in range(self.num_dense):
            self.add_sublayer(f"dense{i}", EqualizedLinear(DLATENT_SIZE, DLATENT_SIZE, lrmul=0.01))

    def forward(self, z: paddle.Tensor) -> paddle.Tensor:
        x = z * paddle.rsqrt((z * z).mean(axis=1, keepdim=True) + 1e-8)
        for dense in self.children():
            x = leaky_relu(dense(x))
        return x
