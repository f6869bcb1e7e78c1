"""A total-variation loss term for pulse-cli's loss string: ``100*L2+0.05*GEOCROSS+0.01*TV``."""

import paddle


def total_variation(inputs) -> paddle.Tensor:
    """Mean absolute difference between neighbouring pixels of the high-resolution image, per image."""
    image = inputs.gen_im
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean(axis=[1, 2, 3])
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean(axis=[1, 2, 3])
    return dx + dy
