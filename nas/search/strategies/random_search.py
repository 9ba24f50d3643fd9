"""Random search: independent samples from the space's grammar (after any seeds).

The baseline every NAS method must beat; on einspace it is a strong one because the grammar's probabilities
already encode a prior (Ericsson et al., NeurIPS 2024, "einspace: Searching for Neural Architectures from
Fundamental Operations").
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nas.search.strategies.base import Proposal, Strategy

if TYPE_CHECKING:
    from search_spaces.spaces import Space

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Samples derivations from the space (operator ``"sample"``); learns nothing except what was told, which
    it avoids proposing again (``dedupe``). Options: see :class:`~nas.search.strategies.base.Strategy`."""

    name = "random"

    def __init__(self, space: Space, *, seed: int, seeds: Sequence[str] = (), dedupe: bool = True,
                 max_tries: int = 20) -> None:
        super().__init__(space, seed=seed, seeds=seeds, dedupe=dedupe, max_tries=max_tries)

    def _propose(self, n: int, rng: random.Random, avoid: set[str]) -> list[Proposal]:
        return self._distinct(n, rng, avoid, self._sample)
