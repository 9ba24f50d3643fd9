"""Shared fixtures: spaces are cached per session because their samplers memoise reachability."""

from __future__ import annotations

import pytest

from nas.cli.environment import set_ray_defaults
from search_spaces.spaces import Space, get_space

set_ray_defaults()  # the tests drive Ray and Tune inside this process, in the environment the command line sets

INPUTS = {"image3x32x32": ("einspace", (3, 32, 32)), "image1x8x8": ("einspace", (1, 8, 8)),
          "sequence1x40": ("einspace-1d", (1, 40)), "nb201": ("nb201", (3, 16, 16)),
          "nb-macro": ("nb-macro", (3, 16, 16)), "hnb201": ("hnb201", (3, 16, 16)),
          "hnb201-shared": ("hnb201-shared", (3, 16, 16)), "hnb201-einspace": ("hnb201-einspace", (3, 8, 8)),
          "seq-templates": ("seq-templates", (1, 40))}


@pytest.fixture(scope="session")
def spaces() -> dict[str, Space]:
    return {label: get_space(name, shape) for label, (name, shape) in INPUTS.items()}
