"""Static plots of one search (PNG, matplotlib): ``plot_search(store, name, out_dir)`` / ``nas search plot``.

As in Optuna's ``visualization`` package, the data is computed first (:func:`plot_data` returns a
:class:`SearchPlotData` of plain tuples) and then drawn, so other front ends can reuse it.

Files written to ``out_dir``:

- ``best_so_far.png``: the best validation accuracy so far against the number of candidates trained (every
  finished trial counts, failed ones included), with each trial's own accuracy as dots;
- ``val_acc_vs_params.png``: validation accuracy against parameters (log scale) of the trained candidates
  (``stopped`` ones hollow), the Pareto front of (max accuracy, min params) over the ``ok`` ones (as
  :meth:`nas.store.Store.pareto_front` takes them) as a step line;
- ``learning_curves.png``: validation accuracy per epoch of the five best candidates (by validation accuracy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from nas.store import Store

__all__ = ["PLOT_FILES", "SearchPlotData", "plot_data", "plot_search"]

PLOT_FILES = ("best_so_far.png", "val_acc_vs_params.png", "learning_curves.png")


class SearchPlotData(NamedTuple):
    """What the plots show.

    Attributes:
        name: the search.
        trained: 1-based count of finished trials, one per trial in id order.
        val_acc: each finished trial's validation accuracy (``None``: failed / none).
        best_so_far: the best validation accuracy up to each trial (``None`` before the first).
        points: ``(params, val_acc, status, trial id)`` of trials with an accuracy.
        pareto: ``(params, val_acc)`` of the non-dominated ``ok`` points (max accuracy, min params), by params.
        curves: ``(label, [(epoch, val_acc), ...])`` of the top 5 trials.
    """

    name: str
    trained: tuple[int, ...]
    val_acc: tuple[float | None, ...]
    best_so_far: tuple[float | None, ...]
    points: tuple[tuple[int, float, str, int], ...]
    pareto: tuple[tuple[int, float], ...]
    curves: tuple[tuple[str, tuple[tuple[int, float], ...]], ...]


def plot_data(store: Store, name: str, top: int = 5) -> SearchPlotData:
    """The data of :func:`plot_search` (raises ``StoreError`` for an unknown search)."""
    trials = store.trials_of(name, status=("ok", "stopped", "failed"))
    vals = tuple(t.val_acc if t.status != "failed" else None for t in trials)
    best: list[float | None] = []
    for v in vals:
        prev = best[-1] if best else None
        best.append(v if prev is None else (prev if v is None else max(prev, v)))
    params = {t.arch_hash: store.get_architecture(t.arch_hash).params for t in trials if t.val_acc is not None}
    points = tuple((params[t.arch_hash], float(t.val_acc), t.status, t.id) for t in trials
                   if t.val_acc is not None and t.status != "failed")
    pareto: list[tuple[int, float]] = []
    for p, v, _, _ in sorted((q for q in points if q[2] == "ok"), key=lambda q: (q[0], -q[1])):
        if not pareto or v > pareto[-1][1]:
            pareto.append((p, v))
    curves = []
    for t in store.best(name, top):
        curve = tuple((int(e.get("epoch", i + 1)), float(e["val_acc"])) for i, e in enumerate(t.epochs)
                      if isinstance(e.get("val_acc"), (int, float)))
        curves.append((f"trial {t.id} ({t.arch_hash[:8]}, {t.val_acc:.3f})", curve))
    return SearchPlotData(name, tuple(range(1, len(trials) + 1)), vals, tuple(best), points, tuple(pareto),
                          tuple(curves))


def plot_search(store: Store, name: str, out_dir: str | Path) -> list[Path]:
    """Write the three PNG plots of the search ``name`` to ``out_dir`` (created); returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    data = plot_data(store, name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f for f in PLOT_FILES]

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [x for x, v in zip(data.trained, data.val_acc) if v is not None]
    ax.scatter(xs, [v for v in data.val_acc if v is not None], s=12, color="0.6", label="trial")
    bx = [x for x, b in zip(data.trained, data.best_so_far) if b is not None]
    ax.step(bx, [b for b in data.best_so_far if b is not None], where="post", color="C0", label="best so far")
    ax.set(xlabel="candidates trained", ylabel="validation accuracy", title=f"{name}: best so far")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    _save(fig, paths[0])

    fig, ax = plt.subplots(figsize=(6, 4))
    styles: dict[str, dict[str, Any]] = {"ok": {"color": "C0"}, "stopped": {"facecolors": "none", "edgecolors": "C0"}}
    for status, style in styles.items():
        pts = [(p, v) for p, v, s, _ in data.points if s == status]
        if pts:
            ax.scatter([max(p, 1) for p, _ in pts], [v for _, v in pts], s=16, label=status, **style)
    if data.pareto:
        ax.step([max(p, 1) for p, _ in data.pareto], [v for _, v in data.pareto], where="post", color="C3",
                label="Pareto front")
    ax.set_xscale("log")
    ax.set(xlabel="parameters", ylabel="validation accuracy", title=f"{name}: accuracy vs size")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    _save(fig, paths[1])

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in data.curves:
        if curve:
            ax.plot([e for e, _ in curve], [v for _, v in curve], marker=".", label=label)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title=f"{name}: learning curves of the top {len(data.curves)}")
    ax.grid(alpha=0.3)
    if data.curves:
        ax.legend(loc="lower right", fontsize="small")
    _save(fig, paths[2])
    return paths


def _save(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
