"""The ``static`` backend's machinery: a generator's synthesis network compiled with
``paddle.jit.to_static``, its forward lowered with oneDNN kernels on CPU (when Paddle has them; see
``CompiledSynthesis`` for the backward). The latent mapping, bicubic downscale and loss terms around
it stay eager: under oneDNN, Paddle 3.3's backward of reflect padding is zero and GEOCROSS's is
wrong, and eager Paddle never uses oneDNN kernels.
"""

from __future__ import annotations

import paddle
from paddle import nn

from pulse_cli.devices import onednn_available
from pulse_cli.graphs.objective import Objective
from pulse_cli.graphs.op.onednn_cache import release_last_program

ONEDNN_FLAG = "FLAGS_use_mkldnn"


def _onednn_flag() -> bool:
    return bool(paddle.get_flags([ONEDNN_FLAG])[ONEDNN_FLAG])


def _set_onednn(enabled: bool) -> bool:
    """Set Paddle's oneDNN flag; its value before."""
    previous = _onednn_flag()
    paddle.set_flags({ONEDNN_FLAG: enabled})
    return previous


class _AssignedSynthesis(nn.Layer):
    """The synthesis network as one program; its output is copied out of oneDNN's memory
    (``assign``), without which Paddle 3.3 crashes handing a raw oneDNN result back to eager code."""

    def __init__(self, synthesis: nn.Layer) -> None:
        super().__init__()
        self.synthesis = synthesis

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        return paddle.assign(self.synthesis(latent_in, noise))


class CompiledSynthesis(nn.Layer):
    """A synthesis network run as a ``paddle.jit.to_static`` program, lowered with oneDNN kernels.

    Paddle lowers a program's kernels the first time it runs, forward and backward alike, with
    the oneDNN flag as it is then. The flag is set for exactly those runs: ``use_onednn`` around
    the forward call, ``onednn_backward`` for the backward (from a gradient hook on the output
    until one on the first input that takes a gradient); the rest of the process never sees it.

    oneDNN's convolutions are 2-3 times faster than Paddle's own, but some of its backward
    kernels are slow (a broadcast multiply or add) or wrong (a broadcast subtraction), so the
    backward uses oneDNN only when ``onednn_backward`` says the network is written for it (its
    generator's declared ``Capabilities.onednn_backward``, as StyleGAN's: 1024 px, batch 1, 6.6 s
    a step against 9.8 s in dygraph) and its parameters are frozen. A network that oneDNN refuses to train
    (``conv2d_transpose`` is inference-only there) is compiled without it.

    After each oneDNN run, forward and backward, the layout copies Paddle's oneDNN kernels cached
    for it are freed (``release_last_program``): they are remade on the next run, and held they
    were most of the program's memory between steps.
    """

    def __init__(
        self, synthesis: nn.Layer, use_onednn: bool | None = None, onednn_backward: bool = False
    ) -> None:
        super().__init__()
        self.use_onednn = onednn_available() if use_onednn is None else use_onednn
        self.onednn_backward = onednn_backward
        self.program = paddle.jit.to_static(_AssignedSynthesis(synthesis), full_graph=True)
        self.onednn_refused: str | None = None
        # whether the parameters were frozen when the program was traced: the graph holds ops that
        # make no gradient for what took none then (MobileStyleGAN's compiled ``styled_conv``)
        self.traced_frozen: bool | None = None

    @property
    def runtime(self) -> str:
        """What runs the network, for reports."""
        if self.onednn_refused:
            return f"Paddle to_static (oneDNN refused: {self.onednn_refused})"
        if not self.use_onednn:
            return "Paddle to_static"
        return "Paddle to_static with oneDNN" + ("" if self.onednn_backward else " (forward)")

    def _run(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        # to_static runs a layer in eval mode as an inference program, without a backward: the
        # wrapper alone stays in train mode (the synthesis inside keeps the mode it was given).
        self.program.training = True
        previous = _set_onednn(self.use_onednn)
        try:
            image = self.program(latent_in, noise)
        finally:
            _set_onednn(previous)
        if self.use_onednn:
            release_last_program()
        return image

    def _frozen(self) -> bool:
        """Whether no parameter takes a gradient, as in a search: what ``onednn_backward`` is
        declared for (oneDNN's reduction for a broadcast bias's gradient aborts the process)."""
        return all(parameter.stop_gradient for parameter in self.program.parameters())

    def _retrace(self) -> None:
        self.program = paddle.jit.to_static(_AssignedSynthesis(self.program.synthesis), full_graph=True)

    def forward(self, latent_in: paddle.Tensor, noise: list[paddle.Tensor]) -> paddle.Tensor:
        frozen = self._frozen()
        if self.traced_frozen is not None and frozen != self.traced_frozen:
            self._retrace()  # parameters thawed or froze since: a program traced for them
        self.traced_frozen = frozen
        try:
            image = self._run(latent_in, noise)
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            if not self.use_onednn:
                raise
            lines = str(exc).strip().splitlines()  # Paddle's message: the line naming the error
            cause = next((line.strip() for line in lines if "Error" in line), type(exc).__name__)
            self.onednn_refused = cause.split(": ", 1)[-1].split(". ")[0]
            self.use_onednn = False
            self._retrace()
            image = self._run(latent_in, noise)
        first_input = next((x for x in [latent_in, *noise] if not x.stop_gradient), None)
        if first_input is not None:
            backward = self.use_onednn and self.onednn_backward and frozen
            previous = _onednn_flag()
            image.register_hook(lambda grad: (_set_onednn(backward), grad)[1])
            first_input.register_hook(lambda grad: self._backward_done(previous, grad))
        return image

    def _backward_done(self, previous: bool, grad: paddle.Tensor) -> paddle.Tensor:
        # The hook on the first input runs once the backward program has run.
        _set_onednn(previous)
        if self.use_onednn:
            release_last_program()
        return grad


def runtime_of(objective: Objective) -> str:
    """What runs ``objective``'s synthesis: eager Paddle, or the compiled program's description."""
    synthesis = objective.generator.synthesis
    return synthesis.runtime if isinstance(synthesis, CompiledSynthesis) else "Paddle dygraph"


def compiled_objective(
    objective: Objective, use_onednn: bool | None = None, onednn_backward: bool | None = None
) -> Objective:
    """The same objective with its generator's synthesis compiled (``CompiledSynthesis``; the
    oneDNN backward as the generator declares, unless ``onednn_backward`` says otherwise), compiled
    once per generator and setting (``Generator.compiled``); the latent mapping, downscale and
    loss terms around it run eagerly (see the module notes)."""
    generator = objective.generator
    if onednn_backward is None:
        onednn_backward = generator.capabilities.onednn_backward
    if use_onednn is None:
        use_onednn = onednn_available()
    synthesis = generator.compiled(  # one program per generator and setting, however many searches
        (CompiledSynthesis, use_onednn, onednn_backward),
        lambda network: CompiledSynthesis(network, use_onednn, onednn_backward),
    )
    compiled = generator.with_synthesis(synthesis)
    weighted = list(zip(objective.weights, objective.term_names))
    return Objective(
        compiled,
        objective.downsample.factor,
        weighted,
        dict(zip(objective.term_names, objective.term_fns)),
        objective.eps,
    )
