"""PULSE's spherical optimizer over Paddle optimizers with torch's update rules."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np
import paddle
import pytest

from pulse_cli import optimizers
from pulse_cli.spherical import SphericalOptimizer, vector_radius

FACTORIES = {name: getattr(optimizers, name) for name in ("sgd", "adam", "sgdm", "adamax")}


def apply_gradient(param: paddle.Tensor, grad: np.ndarray) -> None:
    """Give ``param`` exactly the gradient ``grad``."""
    (param * paddle.to_tensor(grad)).sum().backward()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_steps_match_pulse_spherical_optimizer(reference_dir, name):
    io = np.load(reference_dir / "spherical_io.npz")
    latent = paddle.to_tensor(io["init"], stop_gradient=False)
    opt = SphericalOptimizer(FACTORIES[name]([latent], 0.4), [latent])
    for step, grad in enumerate(io["grads"]):
        opt.clear_grad()
        apply_gradient(latent, grad)
        opt.step()
        np.testing.assert_allclose(
            latent.numpy(), io[f"{name}_states"][step], rtol=0, atol=1e-5, err_msg=f"{name} step {step}"
        )


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_vector_keeps_its_starting_radius(name):
    rng = np.random.default_rng(0)
    latent = paddle.create_parameter(
        [2, 3, 16],
        "float32",
        default_initializer=paddle.nn.initializer.Assign(rng.standard_normal((2, 3, 16))),
    )
    scales = np.array([1.0, 3.0]).reshape([2, 1, 1, 1])
    noise = paddle.to_tensor((rng.standard_normal((2, 1, 8, 8)) * scales).astype(np.float32))
    noise.stop_gradient = False
    start = [vector_radius(p).numpy() for p in (latent, noise)]
    assert start[0].shape == (2, 3, 1) and start[1].shape == (2, 1, 1, 1)
    opt = SphericalOptimizer(FACTORIES[name]([latent, noise], 0.4), [latent, noise])
    for _ in range(3):
        opt.clear_grad()
        ((latent**3).sum() + (noise * paddle.arange(64, dtype="float32").reshape([8, 8])).sum()).backward()
        before = latent.numpy().copy()
        opt.step()
    assert not np.allclose(latent.numpy(), before)
    for param, radius in zip((latent, noise), start, strict=True):
        np.testing.assert_allclose(vector_radius(param).numpy(), radius, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_factories_follow_a_paddle_lr_scheduler(name):
    param = paddle.to_tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape([1, 12]), stop_gradient=False)
    scheduler = paddle.optimizer.lr.LambdaDecay(0.4, lambda step: 0.0 if step == 0 else 1.0)
    opt = FACTORIES[name]([param], scheduler)
    assert isinstance(opt, paddle.optimizer.Optimizer)
    start = param.numpy().copy()
    for step in range(2):
        opt.clear_grad()
        param.sum().backward()
        opt.step()
        scheduler.step()
        if step == 0:
            np.testing.assert_array_equal(param.numpy(), start)
    # the gradient is 1 everywhere: the rate-0.4 step moves by 0.4, sgdm by 0.4 * (0.9 * 1 + 1)
    shift = 0.76 if name == "sgdm" else 0.4
    np.testing.assert_allclose(param.numpy(), start - shift, atol=1e-6)


def test_sgd_momentum_accumulates_like_torch():
    param = paddle.to_tensor([0.0], stop_gradient=False)
    opt = optimizers.sgdm([param], 0.5)
    for _ in range(2):
        opt.clear_grad()
        (param * 2.0).sum().backward()
        opt.step()
    # v1 = 2, p1 = -1; v2 = 0.9 * 2 + 2 = 3.8, p2 = -1 - 1.9
    np.testing.assert_allclose(param.numpy(), [-2.9], rtol=1e-6)


def test_adamax_adds_eps_to_the_gradient_not_the_norm():
    param = paddle.to_tensor([0.0], stop_gradient=False)
    opt = optimizers.adamax([param], 1.0)
    opt.clear_grad()
    (param * 1e-8).sum().backward()
    opt.step()
    # torch: u = max(0, |g| + eps) = 2e-8; p = -lr / (1 - 0.9) * 0.1 * g / u = -0.5
    np.testing.assert_allclose(param.numpy(), [-0.5], rtol=1e-5)


def test_entry_points_name_these_factories():
    registered = {ep.name: ep.load() for ep in entry_points(group="pulse_cli.optimizers")}
    assert registered == FACTORIES
