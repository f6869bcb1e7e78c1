"""MTCNN's three networks (Zhang et al. 2016) as Paddle layers, laid out as the ``mtcnn`` package's
Keras models so its weights load one to one (see ``pulse_cli.faces.weights``).

Keras pools with ``padding="same"`` where these use ``ceil_mode``: for the sizes these networks see
(any even or odd map for 2×2/2, the fixed 22 and 46 px maps for 3×3/2) both add the extra window at
the far edge only, over the same pixels. The dense layers read the last feature map flattened in
Keras's (width, height, channel) order, after its ``Permute((2, 1, 3))``.
"""

from __future__ import annotations

import paddle
from paddle import nn


def _flatten_as_keras(x: paddle.Tensor) -> paddle.Tensor:
    """[N, C, H, W] flattened in the (W, H, C) order the Keras dense weights expect."""
    return x.transpose([0, 3, 2, 1]).flatten(1)


class PNet(nn.Layer):
    """The proposal network: a 12×12 window per output cell (stride 2), on a photo of any size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2D(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2D(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2D(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2D(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2D(32, 4, 1)
        self.conv4_2 = nn.Conv2D(32, 2, 1)

    def forward(self, x: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        """[N, 3, H, W] normalised photo → box offsets [N, 4, h, w] and face probability [N, h, w]."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x), nn.functional.softmax(self.conv4_2(x), axis=1)[:, 1]


class RNet(nn.Layer):
    """The refinement network: 24×24 patches → box offsets and face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2D(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2D(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2D(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2D(3, 2)
        self.conv3, self.prelu3 = nn.Conv2D(48, 64, 2), nn.PReLU(64)
        self.fc4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.fc5_1 = nn.Linear(128, 4)
        self.fc5_2 = nn.Linear(128, 2)

    def forward(self, x: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        """[N, 3, 24, 24] → box offsets [N, 4] and face probability [N]."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.fc4(_flatten_as_keras(self.prelu3(self.conv3(x)))))
        return self.fc5_1(x), nn.functional.softmax(self.fc5_2(x), axis=1)[:, 1]


class ONet(nn.Layer):
    """The output network: 48×48 patches → box offsets, 5 landmarks and face probability."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2D(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2D(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2D(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2D(3, 2)
        self.conv3, self.prelu3 = nn.Conv2D(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2D(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2D(64, 128, 2), nn.PReLU(128)
        self.fc5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.fc6_1 = nn.Linear(256, 4)
        self.fc6_2 = nn.Linear(256, 10)
        self.fc6_3 = nn.Linear(256, 2)

    def forward(self, x: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        """[N, 3, 48, 48] → box offsets [N, 4], landmarks [N, 10] (5 x in the patch, then 5 y, as
        fractions of the patch) and face probability [N]."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.fc5(_flatten_as_keras(self.prelu4(self.conv4(x)))))
        return self.fc6_1(x), self.fc6_2(x), nn.functional.softmax(self.fc6_3(x), axis=1)[:, 1]
