"""Exporting a model's graphs (synthesis, bicubic downscale, scorer) as Paddle static graphs and
ONNX, each checked against eager Paddle before it is written as done."""


class ExportError(RuntimeError):
    """An export that failed (conversion, parity) or an export folder that cannot be used."""
