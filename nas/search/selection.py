"""One round's choice of what to evaluate: propose, build, de-duplicate, score, select.

Shared by the stored search (:mod:`nas.search.driver`, which writes every step to the store) and the in-memory
table search (:mod:`nas.search.simulate`, benchmark mode), so both choose exactly the same candidates:

1. ``strategy.ask(target)`` with ``target = need * oversample`` (``need`` without a scorer); each proposal is
   built and dropped if it is over the space's limits (:func:`within_limits`), if its canonical hash is already
   known to the search (has a trial), or if it came earlier in the round; the strategy is asked again for the
   shortfall, at most :data:`MAX_ASKS` times;
2. the scorer ranks the new candidates (the mean of each scorer's normalised rank, :mod:`nas.search.scoring`);
3. seeds are always kept, the rest by combined rank (ties: proposal order), ``need`` in all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nas.search.scoring import Scorer
    from nas.search.strategies import Proposal, Strategy
    from search_spaces.derivation import Derivation
    from search_spaces.sampler import Limits

__all__ = ["MAX_ASKS", "MAX_STALLED_ROUNDS", "BuiltCandidate", "Pick", "plan_round", "within_limits"]

MAX_ASKS = 4
"""Asks per round at most: the first, then up to three more for the candidates lost to duplicates."""

MAX_STALLED_ROUNDS = 3
"""Rounds in a row without a single new candidate after which a search ends (the space is exhausted)."""


class BuiltCandidate(Protocol):
    """What selection needs of a built candidate (:class:`nas.candidate.Candidate` is one)."""

    hash: str
    arch: str | None

    @property
    def params(self) -> int: ...

    @property
    def flops(self) -> int: ...


@dataclass
class Pick:
    """A new candidate of a round: its proposal, built candidate, raw scores and combined score."""

    proposal: Proposal
    candidate: Any
    raw: dict[str, tuple[float, float]] = field(default_factory=dict)
    combined: float = 0.0


def within_limits(derivation: Derivation, limits: Limits) -> bool:
    """Whether ``derivation``'s static cost (body parameters, FLOPs, nodes) is inside ``limits``.

    Sampling and mutation never leave the limits; seeds and decoded proposals (Optuna's TPE) may, and are dropped.
    """
    cost = derivation.cost
    return cost.params <= limits.max_params and cost.flops <= limits.max_flops and cost.nodes <= limits.max_nodes


def plan_round(strategy: Strategy, scorer: Scorer | None, build: Callable[[Proposal], Any | None],
               known: set[str], need: int, oversample: int,
               warn: Callable[[str], None] = lambda message: None) -> tuple[list[Pick], list[Pick]]:
    """Propose, de-duplicate, score and select ``need`` candidates (see the module docstring).

    Args:
        build: a proposal's built candidate, ``None`` to drop it (over the limits); an exception drops it with a
            warning.
        known: hashes never to propose again (those with a trial); the new candidates' hashes are added.

    Returns:
        ``(pool, chosen)``: every new candidate (scored when there is a scorer), and the ones selected, in order.
    """
    target = need * (oversample if scorer is not None else 1)
    pool: list[Pick] = []
    asked: set[str] = set()
    for _ in range(MAX_ASKS):
        if len(pool) >= target:
            break
        proposals = strategy.ask(target - len(pool), pending=asked)
        if not proposals:
            break
        for p in proposals:
            asked.add(p.derivation)
            try:
                candidate = build(p)
            except Exception as err:  # noqa: BLE001 - a proposal that does not build is skipped
                warn(f"proposal {p.derivation[:80]} does not build: {type(err).__name__}: {err}")
                continue
            if candidate is None or candidate.hash in known:
                continue
            known.add(candidate.hash)
            pool.append(Pick(p, candidate))
    if not pool:
        return [], []
    if scorer is not None:
        scored = scorer.score([p.proposal.derivation for p in pool],
                              onnx_models=[getattr(p.candidate, "onnx_model", None) for p in pool])
        for pick, s in zip(pool, scored):
            pick.raw, pick.combined = dict(s.raw), s.combined
    order = sorted(range(len(pool)), key=lambda i: (pool[i].proposal.operator != "seed", -pool[i].combined, i))
    return pool, [pool[i] for i in order[:need]]
