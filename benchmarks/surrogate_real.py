"""The online surrogate in real training: einspace-1d on MNIST-1D, no seed networks, ``surrogate`` vs random search
vs plain regularised evolution, equal budgets of trainings.

This is :mod:`search_efficiency` (real searches through :func:`nas.search.run_search`: Ray Tune trials with ASHA,
one SQLite store per search, resumable from ``--workdir``; the same analysis: mean best-so-far curves with 95%
bootstrap intervals over seeds, the area under them, paired Wilcoxon tests against random search, plots) with one
more arm, ``surrogate``: the online surrogate strategy (:mod:`nas.search.strategies.surrogate`) whose prior is
the leave-one-out prior that never saw einspace-1d/mnist1d (``benchmarks/results/priors/without-einspace1d-mnist1d``,
the ``predictor_path`` of every arm), refitted on the search's own trainings in a background thread of the
driver (ASHA-stopped trials ranked apart, by their epoch count), with its default inputs (the prior's features,
log params, log FLOPs) and acquisition (Thompson sampling of one head per pick).

    python benchmarks/surrogate_real.py                          # the issue's protocol: 5 seeds x 60 trainings
    python benchmarks/surrogate_real.py --seeds 0 --budget 20    # what fits in a short session (see the report)

Every other option is :mod:`search_efficiency`'s (``--epochs``, ``--batch``, ``--workdir``, ``--fresh``, ...).
Output: ``benchmarks/results/surrogate_real.{json,md,png}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import search_efficiency as E  # noqa: E402 - the benchmark this one extends

E.STRATEGIES["surrogate"] = {"strategy": "surrogate", "scorers": []}
E.LABELS["surrogate"] = "online surrogate (prior refitted on the search's trainings, Thompson sampling)"

DEFAULTS = ["--tasks", "mnist1d", "--strategies", "random", "evolution", "surrogate", "--budget", "60",
            "--seeds", "0", "1", "2", "3", "4", "--out", str(E.ROOT / "benchmarks" / "results" / "surrogate_real.json"),
            "--workdir", str(Path(E.tempfile.gettempdir()) / "nas_surrogate_real")]


def main(argv: list[str] | None = None) -> int:
    """:func:`search_efficiency.main` with this benchmark's defaults (each can be overridden on the command line)."""
    given = list(sys.argv[1:] if argv is None else argv)
    options = {a for a in given if a.startswith("--")}
    defaults: list[str] = []
    i = 0
    while i < len(DEFAULTS):  # keep a default only when its option is not given
        j = i + 1
        while j < len(DEFAULTS) and not DEFAULTS[j].startswith("--"):
            j += 1
        if DEFAULTS[i] not in options:
            defaults += DEFAULTS[i:j]
        i = j
    return E.main(defaults + given)


if __name__ == "__main__":
    raise SystemExit(main())
