"""MobileStyleGAN (Belousov 2021, arXiv 2104.04767) as Paddle layers: StyleGAN2-FFHQ distilled into
depthwise-separable modulated convolutions and an inverse-Haar-wavelet decoder.

Mapping: pixel norm, then 8 × (linear, bias, leaky ReLU 0.2, × √2) — StyleGAN2's mapping.

Synthesis, at 1024 px (``CHANNELS``):
- a learned constant input [1, 512, 4, 4] and a modulated 3×3 conv at 4×4;
- 7 blocks, each doubling the resolution: the input's channels are modulated by the style and read
  as the four Haar wavelet bands of a quarter as many channels (low, then three highs per channel),
  which the inverse Haar transform turns into an image of twice the size (``inverse_haar``); then
  two modulated depthwise 3×3 + pointwise 1×1 convs (``ModulatedDWConv``);
- after every conv: noise, bias, leaky ReLU 0.2 (no gain);
- a modulated 1×1 to-image conv to 12 channels: the Haar bands of the RGB image at twice the size.

Modulation scales a conv's input channels by ``linear(style) · 1/√fan_in``. MobileStyleGAN
demodulates with a fixed style (a buffer), so its demodulation is a constant per output channel:
it is folded into the pointwise (or full) conv weight here, as in the published OpenVINO IR. The
noise maps, likewise, are stored already multiplied by their layer's noise strength: the
``noise`` buffers are the published maps, and noise given at run time is added as it is.

The graph is written to train through oneDNN's backward under ``to_static`` (DEVELOPERS.md, "CPU
speed", issue 20): each modulation is folded into its conv's weights (``modulated_conv``), the
inverse Haar transform is a fixed grouped conv (``inverse_haar``), and each styled conv's noise,
bias and leaky ReLU are one compiled op between plain-layout reshapes (``epilogue``). The values are
the published network's; the tests compare each form with the plain one, values and gradients.

Each of the 23 modulations reads its own row of ``latent_in`` [B, 23, 512], in the order in which
they reach the image: row 0 the 4×4 conv; rows 1 + 3k, 2 + 3k, 3 + 3k block k's upsampling, conv1
and conv2; row 22 the to-image conv. The original network feeds one style to a block's upsampling
and its conv1 (rows 1 + 3k and 2 + 3k here), see ``SHARED_STYLE_ROWS``.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn.functional as F
from paddle import nn
from paddle.nn.initializer import Constant, Normal

from pulse_cli.graphs.op import inverse_haar as compiled_haar
from pulse_cli.graphs.op import styled_conv as compiled_conv
from pulse_cli.graphs.op.noise_bias_leaky_relu import fused, noise_bias_leaky_relu
from pulse_cli.graphs.op.onednn_cache import releasing
from pulse_cli.graphs.stylegan import leaky_relu

STYLE_DIM = 512
CHANNELS = (512, 512, 512, 512, 512, 256, 128, 64)  # at 4, 8, … 512 px: the published FFHQ model
MAPPING_LAYERS = 8
HAAR_BANDS = 4  # low, then three high bands per channel
IMAGE_BANDS = 3 * HAAR_BANDS


def _normal(shape: list[int], std: float = 1.0) -> paddle.Tensor:
    return paddle.create_parameter(shape, "float32", default_initializer=Normal(std=std))


def modulated_conv(
    x: paddle.Tensor, weight: paddle.Tensor, modulation: paddle.Tensor, groups: int = 1, padding: int = 0
) -> paddle.Tensor:
    """``F.conv2d(x · modulation, weight, groups=groups)`` for a per-sample, per-input-channel
    ``modulation`` [B, C], with the modulation folded into the weight as StyleGAN2's official code
    does: a batch of B is one conv of B·``groups`` groups over the batch folded into the channels.

    Why: the full-size multiply's gradient for the modulation is a reduction over the image, which
    oneDNN's backward runs with its reference kernel in the blocked layout (3 s for one 64×512²
    multiply at 1024 px); scaling the weight costs a few thousand multiplies. A graph built for any
    batch (an export) multiplies the input instead: a conv's group count must be a number there.
    """
    batch = x.shape[0]
    if not isinstance(batch, int) or math.prod(weight.shape) >= math.prod(x.shape[1:]):
        # where the weight outweighs the input (the 512→512 3×3 conv at 4×4), scaling the weight
        # would cost more than the input's multiply, whose 6-D form oneDNN runs with its
        # reference kernel (134 ms at 1024 px)
        return F.conv2d(x * modulation.unsqueeze([2, 3]), weight, padding=padding, groups=groups)
    out_channels, group_in = weight.shape[0], weight.shape[1]
    kernel = list(weight.shape[2:])
    grouped = weight.reshape([1, groups, out_channels // groups, group_in, *kernel])
    scale = modulation.reshape([batch, groups, 1, group_in, 1, 1])
    weight = (grouped * scale).reshape([batch * out_channels, group_in, *kernel])
    if batch == 1:  # no reshapes: in oneDNN's blocked layout each would be a full-size reorder
        return F.conv2d(x, weight, padding=padding, groups=groups)
    y = F.conv2d(x.reshape([1, -1, *x.shape[2:]]), weight, padding=padding, groups=batch * groups)
    return y.reshape([batch, out_channels, *y.shape[2:]])


def plain_layout(x: paddle.Tensor) -> paddle.Tensor:
    """``x`` as it is, but under ``to_static`` + oneDNN in Paddle's plain layout, forward and
    backward (a shape-preserving reshape: oneDNN's reshape and its gradient write plain layout).

    Why, around a styled conv's epilogue: a compiled custom op is handed oneDNN's memory as it is,
    without a reorder, so it must be plain both ways (else its values and gradients are wrong).
    Paddle's ops would take it, but oneDNN's conv forward writes channels-last (``acdb``), every
    full-size tensor the forward program keeps for its backward is reordered to plain layout where
    the two programs meet (9 reorders of 64×512² at 1024 px, 21 ms each), and the gradient comes
    back from the next conv in oneDNN's blocked layout, against plain data, for which oneDNN runs
    its reference eltwise backward (0.55 s at 64×512², against 10 ms in plain layout)."""
    return x.reshape(x.shape) if isinstance(x.shape[0], int) else x


def epilogue(x: paddle.Tensor, noise: paddle.Tensor, bias: paddle.Tensor) -> paddle.Tensor:
    """A styled conv's noise, bias and leaky ReLU 0.2: the compiled op where it runs
    (``graphs/op/noise_bias_leaky_relu``), else Paddle's ops in plain layout (``plain_layout``)."""
    if fused(x, noise):
        return plain_layout(noise_bias_leaky_relu(plain_layout(x), noise, bias))
    return plain_layout(leaky_relu(plain_layout(x) + noise + bias))


def haar_synthesis_kernel(channels: int) -> paddle.Tensor:
    """The inverse Haar transform of ``channels`` channels as grouped 1×1 conv weights
    [4·channels, 4, 1, 1]: group c reads ``haar_groups``' (low, high 0, high 1, high 2) of channel c
    and writes the four pixels of each 2×2 output cell, in the order ``pixel_shuffle`` places them
    (row parity a, column parity b at 2a + b): 0.5·(low + s_a·h0 + s_b·h1 + s_a·s_b·h2), s = (1, -1)."""
    signs = (1.0, -1.0)
    cell = [[0.5, 0.5 * sa, 0.5 * sb, 0.5 * sa * sb] for sa in signs for sb in signs]
    kernel = paddle.to_tensor(cell, dtype="float32").reshape([1, HAAR_BANDS, HAAR_BANDS])
    return kernel.tile([channels, 1, 1]).reshape([channels * HAAR_BANDS, HAAR_BANDS, 1, 1])


def haar_groups(x: paddle.Tensor) -> paddle.Tensor:
    """MobileStyleGAN's band layout [B, 4C, …] (the low bands of C channels, then their three high
    bands, channel c's at 3c, 3c+1, 3c+2 of the rest) regrouped per channel: (low, h0, h1, h2) of
    channel 0, then of channel 1, …: the groups of ``haar_synthesis_kernel``'s conv."""
    channels = x.shape[1] // HAAR_BANDS
    rest = list(x.shape[2:])
    low = x[:, :channels].unsqueeze(2)
    high = x[:, channels:].reshape([0, channels, HAAR_BANDS - 1, *rest])
    return paddle.concat([low, high], axis=2).reshape([0, channels * HAAR_BANDS, *rest])


def inverse_haar(
    x: paddle.Tensor, kernel: paddle.Tensor, modulation: paddle.Tensor | None = None
) -> paddle.Tensor:
    """The inverse Haar (db1) wavelet transform of ``x`` [B, 4C, h, w] (MobileStyleGAN's band
    layout, see ``haar_groups``), its channels first scaled by ``modulation`` [B, 4C] when given:
    [B, C, 2h, 2w]. ``kernel`` is ``haar_synthesis_kernel(C)``.

    The synthesis filters are [1, 1]/√2 and [1, -1]/√2 of stride 2, so each output pixel of a 2×2
    cell is half a ± sum of the four bands. The compiled op does it in one pass where it runs
    (``graphs/op/inverse_haar``; ``x`` must then be in plain layout, see ``plain_layout``, and so
    must the gradient that reaches its output, which ``SynthesisBlock`` sees to), else a
    grouped 1×1 conv on the regrouped bands, then ``pixel_shuffle``. A conv rather than adds and
    subtractions: under ``to_static`` oneDNN's ``subtract_grad`` gives the subtrahend the wrong
    sign (DEVELOPERS.md).
    """
    if compiled_haar.fused(x):
        if modulation is None:
            modulation = paddle.ones(x.shape[:2], dtype=x.dtype)
        return compiled_haar.inverse_haar(x, modulation)
    channels = x.shape[1] // HAAR_BANDS
    bands = haar_groups(x)
    if modulation is None:
        return F.pixel_shuffle(F.conv2d(bands, kernel, groups=channels), 2)
    return F.pixel_shuffle(modulated_conv(bands, kernel, haar_groups(modulation), groups=channels), 2)


class Modulation(nn.Layer):
    """Style to per-channel scale: ``(style · weightᵀ + bias) · scale``, [B, 512] → [B, C]."""

    def __init__(self, channels: int, scale: float = 1.0, style_dim: int = STYLE_DIM) -> None:
        super().__init__()
        self.scale = scale
        # random weights (before the published ones are loaded) keep a style's scale: a random
        # network of any depth then makes finite images, for benchmarks
        self.weight = _normal([channels, style_dim], std=1 / math.sqrt(style_dim))
        self.bias = paddle.create_parameter([channels], "float32", default_initializer=Constant(1.0))

    def forward(self, style: paddle.Tensor) -> paddle.Tensor:
        # einsum rather than matmul: the oneDNN matmul backward crashes when the weight needs no gradient
        modulation = paddle.einsum("bi,oi->bo", style, self.weight) + self.bias
        return modulation * self.scale


class StyledConv(nn.Layer):
    """A modulated 3×3 conv (depthwise + pointwise, or full), then noise, bias and leaky ReLU 0.2."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, depthwise: bool = True) -> None:
        super().__init__()
        self.depthwise = depthwise
        self.modulation = Modulation(in_channels, scale=1 / math.sqrt(in_channels * 9))
        if depthwise:
            self.weight_dw = _normal([in_channels, 1, 3, 3])
            self.weight_pw = _normal([out_channels, in_channels, 1, 1])  # demodulation folded in
        else:
            self.weight = _normal([out_channels, in_channels, 3, 3])  # demodulation folded in
        self.register_buffer("noise", paddle.randn([1, 1, resolution, resolution]), persistable=True)
        self.bias = paddle.create_parameter(
            [1, out_channels, 1, 1], "float32", default_initializer=Constant(0.0)
        )

    def compiled(self, x: paddle.Tensor, noise: paddle.Tensor) -> bool:
        """Whether this conv runs as one compiled op for ``x`` and ``noise`` here
        (``graphs/op/styled_conv``: depthwise, frozen, on the CPU): plain layout in and out, both
        ways."""
        return self.depthwise and compiled_conv.fused(x, noise, [self.weight_dw, self.weight_pw, self.bias])

    def forward(self, x: paddle.Tensor, style: paddle.Tensor, noise: paddle.Tensor) -> paddle.Tensor:
        modulation = self.modulation(style)
        if self.compiled(x, noise):
            return compiled_conv.styled_conv(x, self.weight_dw, modulation, self.weight_pw, noise, self.bias)
        if self.depthwise:
            x = modulated_conv(x, self.weight_dw, modulation, groups=x.shape[1], padding=1)
            x = F.conv2d(x, self.weight_pw)
        else:
            x = modulated_conv(x, self.weight, modulation, padding=1)
        return epilogue(x, noise, self.bias)


class WaveletUpsample(nn.Layer):
    """Modulate the channels (no 1/√fan_in scale), read them as Haar bands, inverse-transform: ×2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.modulation = Modulation(in_channels)
        self.register_buffer("haar", haar_synthesis_kernel(in_channels // HAAR_BANDS), persistable=False)

    def forward(self, x: paddle.Tensor, style: paddle.Tensor) -> paddle.Tensor:
        return inverse_haar(x, self.haar, self.modulation(style))


class SynthesisBlock(nn.Layer):
    """Wavelet upsampling to ``resolution`` and two depthwise-separable styled convs."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int) -> None:
        super().__init__()
        self.up = WaveletUpsample(in_channels)
        self.conv1 = StyledConv(in_channels // HAAR_BANDS, out_channels, resolution)
        self.conv2 = StyledConv(out_channels, out_channels, resolution)

    def forward(self, x: paddle.Tensor, styles: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        upsampled = self.up(x, styles[:, 0])
        if compiled_haar.fused(x) and not self.conv1.compiled(upsampled, noise[0]):
            # the compiled transform reads its gradient as it is, and oneDNN's conv sends it blocked
            upsampled = plain_layout(upsampled)
        # compiled, oneDNN's cached layout copies are dropped conv by conv (issue 20's memory);
        # only after the convs: ``releasing`` must follow a plain layout (their epilogue's or op's)
        x = releasing(self.conv1(upsampled, styles[:, 1], noise[0]))
        return releasing(self.conv2(x, styles[:, 2], noise[1]))


class ToImage(nn.Layer):
    """Modulated 1×1 conv to the 12 Haar bands of RGB, bias, inverse Haar: the image at 2× size."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.modulation = Modulation(in_channels, scale=1 / math.sqrt(in_channels))
        self.weight = _normal([IMAGE_BANDS, in_channels, 1, 1])
        self.bias = paddle.create_parameter(
            [1, IMAGE_BANDS, 1, 1], "float32", default_initializer=Constant(0.0)
        )
        self.register_buffer("haar", haar_synthesis_kernel(IMAGE_BANDS // HAAR_BANDS), persistable=False)

    def forward(self, x: paddle.Tensor, style: paddle.Tensor) -> paddle.Tensor:
        # plain both ways: a compiled conv before it reads its gradient as it is (oneDNN's conv
        # sends it blocked), and the compiled transform after it reads plain memory (oneDNN's
        # conv writes channels-last)
        bands = modulated_conv(plain_layout(x), self.weight, self.modulation(style)) + self.bias
        return inverse_haar(plain_layout(bands), self.haar)


class MobileSynthesis(nn.Layer):
    """MobileStyleGAN's synthesis network: ``latent_in`` [B, num_layers, 512] and noise maps
    [B, 1, r, r] (r in ``noise_resolutions``) to RGB [B, 3, R, R], roughly in [-1, 1].

    ``channels`` are the feature channels at 4, 8, … R/2 px (each a multiple of 4); the default is
    the published 1024 px model: 23 style rows, 15 noise maps. ``default_noise(batch)`` gives the
    published noise maps (the ``noise`` buffers of the convs), tiled to the batch.
    """

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        if len(channels) < 2 or any(c % HAAR_BANDS for c in channels):
            raise ValueError(f"MobileSynthesis needs 2+ channel counts, each a multiple of 4, got {channels}")
        self.resolution = 2 ** (len(channels) + 2)
        self.num_layers = 3 * (len(channels) - 1) + 2
        self.input = paddle.create_parameter([1, channels[0], 4, 4], "float32", default_initializer=Normal())
        self.conv = StyledConv(channels[0], channels[0], 4, depthwise=False)
        self.blocks = nn.LayerList(
            SynthesisBlock(c_in, c_out, 2 ** (k + 3))
            for k, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True))
        )
        self.to_img = ToImage(channels[-1])
        self.noise_resolutions = (4,) + tuple(2 ** (k // 2 + 3) for k in range(2 * len(self.blocks)))

    def styled_convs(self) -> list[StyledConv]:
        """The convs that take noise, in the order of the noise maps."""
        return [self.conv] + [conv for block in self.blocks for conv in (block.conv1, block.conv2)]

    def default_noise(self, batch: int = 1) -> list[paddle.Tensor]:
        """The published noise maps (already scaled by their layers' noise strengths), [batch, 1, r, r]."""
        return [paddle.tile(conv.noise, [batch, 1, 1, 1]) for conv in self.styled_convs()]

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        if len(noise) != len(self.noise_resolutions):
            raise ValueError(
                f"MobileSynthesis takes {len(self.noise_resolutions)} noise maps, got {len(noise)}"
            )
        x = self.input.tile([latent_in.shape[0], 1, 1, 1])
        x = self.conv(x, latent_in[:, 0], noise[0])
        for k, block in enumerate(self.blocks):
            x = block(x, latent_in[:, 1 + 3 * k : 4 + 3 * k], noise[1 + 2 * k : 3 + 2 * k])
        return self.to_img(x, latent_in[:, self.num_layers - 1])


def shared_style_rows(num_blocks: int = len(CHANNELS) - 1) -> list[tuple[int, int]]:
    """Pairs of ``latent_in`` rows that the original MobileStyleGAN feeds one style (a block's
    upsampling and conv1)."""
    return [(1 + 3 * k, 2 + 3 * k) for k in range(num_blocks)]


SHARED_STYLE_ROWS = shared_style_rows()


class MobileMapping(nn.Layer):
    """StyleGAN2's mapping network as MobileStyleGAN ships it: z [B, 512] to w [B, 512] by pixel
    norm and ``dense0`` .. ``dense7`` (weight [out, in] with the learning-rate scale folded in,
    bias, leaky ReLU 0.2, × √2)."""

    def __init__(self, num_layers: int = MAPPING_LAYERS, dim: int = STYLE_DIM) -> None:
        super().__init__()
        for i in range(num_layers):
            dense = nn.Layer()
            dense.weight = _normal([dim, dim], std=1 / math.sqrt(dim))
            dense.bias = paddle.create_parameter([dim], "float32", default_initializer=Constant(0.0))
            self.add_sublayer(f"dense{i}", dense)

    def forward(self, z: paddle.Tensor) -> paddle.Tensor:
        x = z * paddle.rsqrt((z * z).mean(axis=1, keepdim=True) + 1e-8)
        for dense in self.children():
            x = leaky_relu(paddle.matmul(x, dense.weight, transpose_y=True) + dense.bias) * math.sqrt(2)
        return x
