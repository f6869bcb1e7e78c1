"""What the README says the backends do is what they do."""

from __future__ import annotations

from pathlib import Path

from pulse_cli import plugins
from pulse_cli.backends import CompiledSynthesis, compiled_objective
from pulse_cli.backends.registry import BUILTIN
from pulse_cli.graphs.bicubic import BicubicDownsample
from pulse_cli.graphs.objective import Objective
from pulse_cli.models.registry import get_spec

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_readme_describes_each_built_in_backend_as_it_describes_itself():
    for backend in BUILTIN:
        assert f"`{backend.name}`: {backend.description}." in README, backend.name
    assert "compiled forward/backward" not in README  # only the synthesis network is compiled


def test_static_compiles_the_synthesis_network_and_nothing_around_it():
    spec = get_spec("stylegan-ffhq")
    generator = spec.build(**spec.small_config)
    eager = Objective.from_loss_str(generator, 4, "100*L2+0.05*GEOCROSS", 1e-3, plugins.available("losses"))
    compiled = compiled_objective(eager)
    assert isinstance(compiled.generator.synthesis, CompiledSynthesis)
    assert compiled.generator.synthesis.program.synthesis is generator.synthesis
    assert compiled.generator.latent_map is generator.latent_map  # eager
    assert type(compiled.downsample) is BicubicDownsample  # eager
    assert compiled.term_fns == eager.term_fns  # the eager loss functions
