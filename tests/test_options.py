"""SearchOptions refuses, when it is made, every value a search could not run with."""

from __future__ import annotations

import math

import pytest

from pulse_cli.options import SearchOptions


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"eps": math.nan}, "eps must be a finite number of at least 0, got nan"),
        ({"eps": math.inf}, "eps must be a finite number of at least 0, got inf"),
        ({"eps": -1e-3}, "eps must be a finite number of at least 0"),
        ({"learning_rate": math.nan}, "learning_rate must be a finite number above 0, got nan"),
        ({"learning_rate": -math.inf}, "learning_rate must be a finite number above 0, got -inf"),
        ({"learning_rate": -0.4}, "learning_rate must be a finite number above 0, got -0.4"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number above 0"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"steps": 2.5}, "steps must be at least 1 (a whole number), got 2.5"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"duplicates": -2}, "duplicates must be at least 1"),
        ({"starts": 0}, "starts must be at least 1"),
        ({"num_trainable_noise_layers": -1}, "num_trainable_noise_layers must be at least 0"),
        ({"seed": -1}, "seed must be at least 0"),
        ({"seed": True}, "seed must be at least 0 (a whole number), got True"),
    ],
)
def test_every_numeric_option_is_checked_when_the_options_are_made(changes, message):
    with pytest.raises(ValueError) as error:
        SearchOptions(**changes)
    assert message in str(error.value)


def test_the_defaults_and_edge_values_are_accepted():
    SearchOptions()
    SearchOptions(eps=0.0, seed=0, num_trainable_noise_layers=0, learning_rate=1e-9)
