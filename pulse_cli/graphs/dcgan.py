"""The PyTorch DCGAN-tutorial generator (64×64 faces) as a Paddle layer with the torch state-dict names."""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

KERNEL = 4
BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d's default


class ConvTranspose4x4(nn.Layer):
    """``torch.nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False)``: weight [cin, cout, 4, 4].

    With ``subpixel`` it is computed with regular convolutions only, for backends whose
    ``conv2d_transpose`` cannot train (Paddle's to_static with oneDNN): stride 1 is a convolution of
    the input padded by ``3 - padding`` with the flipped kernel; stride 2, padding 1 splits into four
    2×2 convolutions, one per output pixel parity, interleaved by a pixel shuffle.
    """

    def __init__(self, cin: int, cout: int, stride: int, padding: int, subpixel: bool = False) -> None:
        super().__init__()
        if (stride, padding) not in ((1, 0), (2, 1)):
            raise ValueError(f"built for (stride, padding) (1, 0) or (2, 1), not ({stride}, {padding})")
        self.stride = stride
        self.padding = padding
        self.subpixel = subpixel
        self.weight = self.create_parameter([cin, cout, KERNEL, KERNEL])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if not self.subpixel:
            return F.conv2d_transpose(x, self.weight, stride=self.stride, padding=self.padding)
        # as a correlation, a transposed conv uses the kernel flipped and with in/out channels swapped
        flipped = paddle.flip(self.weight, axis=[2, 3]).transpose([1, 0, 2, 3])
        if self.stride == 1:
            return F.conv2d(x, flipped, padding=KERNEL - 1 - self.padding)
        # output row 2m+a takes input rows m-1+a, m+a with flipped-kernel rows a, a+2 (same for columns)
        phases = [
            F.conv2d(x, flipped[:, :, a::2, b::2], padding=[1 - a, a, 1 - b, b])
            for a in (0, 1)
            for b in (0, 1)
        ]
        cout, (height, width) = self.weight.shape[1], x.shape[2:]
        return F.pixel_shuffle(paddle.stack(phases, axis=2).reshape([-1, cout * 4, height, width]), 2)


class FrozenBatchNorm2D(nn.Layer):
    """``torch.nn.BatchNorm2d`` in eval mode (running statistics), with torch's parameter names."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = self.create_parameter([channels], default_initializer=nn.initializer.Constant(1.0))
        self.bias = self.create_parameter([channels], is_bias=True)
        self.register_buffer("running_mean", paddle.zeros([channels]))
        self.register_buffer("running_var", paddle.ones([channels]))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        scale = self.weight * paddle.rsqrt(self.running_var + BN_EPSILON)
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape([1, -1, 1, 1]) + shift.reshape([1, -1, 1, 1])


class DCGANGenerator(nn.Layer):
    """The DCGAN-tutorial ``netG``: z [B, nz] → 4×4 → 8×8 → … → [B, nc, 64, 64] in [-1, 1].

    Sublayer names match torch's ``main.<index>`` so a torch state dict loads by name (without
    BatchNorm's ``num_batches_tracked``). ``subpixel`` builds it without ``conv2d_transpose``.
    """

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, subpixel: bool = False) -> None:
        super().__init__()
        self.nz = nz
        widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Layer] = []
        for index, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            stride, padding = (1, 0) if index == 0 else (2, 1)
            conv = ConvTranspose4x4(cin, cout, stride, padding, subpixel)
            layers += [conv, FrozenBatchNorm2D(cout), nn.ReLU()]
        layers += [ConvTranspose4x4(ngf, nc, 2, 1, subpixel), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, dlatents: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        """The images [B, nc, 64, 64] for latents [B, 1, nz]; the network takes no noise."""
        return self.main(dlatents.reshape([-1, self.nz, 1, 1]))
