"""Frees the oneDNN buffers Paddle keeps for a compiled program (``onednn_cache.cc``), for the
``static`` backend's memory.

Paddle's oneDNN conv kernels cache, per op, the layout copies they reorder their inputs into,
outside Paddle's allocator, for as long as the program's interpreter lives, i.e. for the whole
process under ``paddle.jit.to_static``: at 1024 px MobileStyleGAN, 0.33 GB after the forward and
0.61 GB more after the backward, besides a second copy of the forward's once the backward has
run (DEVELOPERS.md, issue 20). ``release_last_program`` drops what the program that last ran on
this thread cached, between runs; ``releasing`` puts the same op in a graph, so that a run drops
what it cached so far where its forward, and then its backward, reach it. The next use makes the
copies afresh, as Paddle's ops without a cache do every time. Where the op cannot be had (no
compiler, ``PULSE_COMPILED_OPS=0``, an export) nothing is released.
"""

from __future__ import annotations

import paddle

from pulse_cli.graphs.op import library

NAME = "pulse_release_onednn_cache"


def release_last_program() -> bool:
    """Drop the oneDNN buffers Paddle cached for the program that ran last on this thread (a
    ``to_static`` forward, or its backward); call it right after that run. False where the
    compiled op is not there."""
    op = library.op(NAME)
    if op is None:
        return False
    op(paddle.zeros([1]))  # an op takes a tensor: this one only passes it through
    return True


def releasing(x: paddle.Tensor) -> paddle.Tensor:
    """``x`` as it is; in a graph compiled by ``to_static`` on the CPU, passed through the op that
    drops what the running program cached so far, in the forward where it reaches ``x`` and in the
    backward where ``x``'s gradient is complete: between a network's convs, it keeps the copies of
    one conv at a time instead of the whole network's. Eager code runs no program: ``x``.

    Only for an ``x`` that ``plain_layout`` made (a reshape under oneDNN): the op hands on its
    input and its gradient in whatever layout oneDNN left them, and Paddle marks neither for a
    reorder, so the ops on both sides must read oneDNN's layouts, as oneDNN's reshape and conv do;
    Paddle's own kernels (``pixel_shuffle``'s gradient) would read blocked memory as plain (the
    latent's gradient was all wrong with one after MobileStyleGAN's wavelet upsampling)."""
    op = None if paddle.in_dynamic_mode() else library.op_for(NAME)
    return x if op is None else op(x)
