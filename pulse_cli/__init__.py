"""pulse-cli: PULSE photo upsampling on PaddlePaddle."""

__version__ = "0.1.0"
