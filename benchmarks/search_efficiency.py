"""Search efficiency: random search vs regularised evolution vs predictor/proxy-ranked evolution, equal budgets.

Every search is a real one (:func:`nas.search.run_search`: Ray Tune trials with ASHA, one SQLite store per
search), on digits with einspace and the platform's default :class:`~nas.search.SearchConfig` except for what is
compared. **No seed networks** (``seeds: []``) in any of them, so that the comparison is about the search, not
about the shipped known-good networks the default search trains first. The strategies (``--strategies``):

* ``random``: random search, ``scorers: []`` (no pre-training selection);
* ``evolution``: regularised evolution, ``scorers: []``;
* ``ranked``: regularised evolution whose proposals are ranked before training by the README default scorers
  ``[predictor, zen]`` (the driver proposes ``oversample`` = 4 candidates per trained one and trains the best
  quarter): the default search without seeds. This is the "guided" search of the headline number;
* ``guided`` (optional): the ``guided`` strategy (each slot breeds ``candidates_per_slot`` = 4 children ranked
  by the same scorers inside the strategy; the driver's ``oversample`` is 1 so it adds no second selection);
* ``random-ranked`` (optional): random samples ranked by ``[predictor, zen]`` (oversample 4), separating the
  effect of the ranking from that of evolution.

Each search trains exactly ``--budget`` candidates (default 30) in rounds of ``--batch`` (default 10), for each
seed of ``--seeds`` (default 0 1 2; the search's seed also fixes the data split and training). From each store:
the best-so-far validation accuracy after each trained candidate (trials in id order, i.e. in the order they were
queued; ``ok``, ``stopped`` and ``failed`` trials all count as trainings, a failed one adds no accuracy), the test
accuracy of the best trial by validation accuracy, and the wall time. The headline number: how many trainings
each non-random strategy needs to reach random search's final best validation accuracy (of the same seed, and of
the mean over seeds); the goal is <= 50% of the budget.

Run from the repository root::

    python benchmarks/search_efficiency.py [--strategies random evolution ranked] [--seeds 0 1 2] \
        [--budget 30] [--batch 10] [--epochs 20] [--workdir DIR] [--fresh] \
        [--out benchmarks/results/search_efficiency.json] [--no-plot]

Resumable: each search lives in ``--workdir`` (default ``$TMPDIR/nas_search_efficiency``) as ``<strategy>-s<seed>.db``
with a ``.json`` note (its config and wall time). A finished search is read back, not rerun; an unfinished one (the
script was killed) is resumed with :func:`nas.search.resume_search`. So partial runs (``--strategies random
--seeds 0``) can be done one by one, and a final run over everything only writes the report. ``--fresh`` deletes
the requested searches first. Results go to ``--out`` (JSON), the same path with ``.md``, and ``.png`` (the mean
best-so-far curves, matplotlib) unless ``--no-plot``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from nas.search import SearchConfig, resume_search, run_search  # noqa: E402
from nas.store import Store  # noqa: E402

SCORERS = ["predictor", "zen"]  # the README default

#: What each compared search changes in the default SearchConfig (besides seeds, budget, batch, epochs, seed).
STRATEGIES: dict[str, dict[str, Any]] = {
    "random": {"strategy": "random", "scorers": []},
    "evolution": {"strategy": "evolution", "scorers": []},
    "ranked": {"strategy": "evolution", "scorers": SCORERS},
    "guided": {"strategy": "guided", "scorers": SCORERS, "oversample": 1,
               "strategy_options": {"candidates_per_slot": 4}},
    "random-ranked": {"strategy": "random", "scorers": SCORERS},
}
LABELS = {
    "random": "random search (no ranking)",
    "evolution": "regularised evolution (no ranking)",
    "ranked": "evolution + predictor/zen ranking (oversample 4)",
    "guided": "guided evolution (predictor/zen, 4 children per slot)",
    "random-ranked": "random + predictor/zen ranking (oversample 4)",
}
DEFAULT_STRATEGIES = ["random", "evolution", "ranked"]
BASELINE = "random"
FINISHED = ("ok", "stopped", "failed")


# ------------------------------------------------------------------------------------------------ running


def search_config(strategy: str, seed: int, budget: int, batch: int, epochs: int | None) -> SearchConfig:
    fields: dict[str, Any] = {**STRATEGIES[strategy], "seeds": [], "budget": budget, "batch": batch, "seed": seed}
    if epochs is not None:
        fields["train"] = {"epochs": epochs}
    return SearchConfig.from_dict(fields)


def run_one(strategy: str, seed: int, config: SearchConfig, workdir: Path) -> dict[str, Any]:
    """Run (or resume, or read back) one search; return its note (config, wall seconds, status)."""
    name = f"{strategy}-s{seed}"
    db_path = workdir / f"{name}.db"
    note_path = workdir / f"{name}.json"
    db = f"sqlite:///{db_path}"
    note: dict[str, Any] = json.loads(note_path.read_text()) if note_path.exists() else {}
    if note and note.get("config") != config.to_dict():
        raise SystemExit(f"error: {db_path} holds a search with another config; use --fresh or another --workdir")
    if note.get("status") == "finished" and db_path.exists():
        print(f"[{name}] finished earlier ({note['seconds']:.0f} s): read back", flush=True)
        return note
    note = {"name": name, "strategy": strategy, "seed": seed, "db": str(db_path), "config": config.to_dict(),
            "seconds": float(note.get("seconds", 0.0)), "runs": int(note.get("runs", 0)), "status": "running"}
    note_path.write_text(json.dumps(note, indent=2) + "\n")

    def progress(p: Any) -> None:
        if p.event == "trial" and p.trial is not None:
            t = p.trial
            acc = "-" if t.val_acc is None else f"{t.val_acc:.4f}"
            best = "-" if p.best_val_acc is None else f"{p.best_val_acc:.4f}"
            print(f"[{name}] {p.finished:3d}/{p.budget} trial {t.id} {t.status:7s} val {acc}  best {best}",
                  flush=True)
        elif p.event in ("round", "warning", "start"):
            print(f"[{name}] {p.message}", flush=True)

    started = time.perf_counter()
    exists = db_path.exists()
    if exists:
        with Store(db) as store:
            exists = name in {s.name for s in store.list_searches()}
    if exists:
        print(f"[{name}] resuming an unfinished search", flush=True)
        summary = resume_search(name, db=db, progress=progress)
    else:
        summary = run_search(config, name=name, db=db, progress=progress)
    note["seconds"] += time.perf_counter() - started
    note["runs"] += 1
    note["status"] = summary.status
    note["warnings"] = list(summary.warnings)
    note_path.write_text(json.dumps(note, indent=2) + "\n")
    print(f"[{name}] {summary.status}: {summary.finished} trials in {note['seconds']:.0f} s, best val "
          f"{summary.best.val_acc if summary.best else None}", flush=True)
    return note


# ------------------------------------------------------------------------------------------------ analysis


def read_search(note: dict[str, Any]) -> dict[str, Any]:
    """The per-search results from its store: best-so-far curve over all trainings, best by val, counts."""
    name = note["name"]
    with Store(f"sqlite:///{note['db']}") as store:
        trials = store.trials_of(name, status=FINISHED)
        best = store.best(name, 1)
        arch = store.get_architecture(best[0].arch_hash) if best else None
    curve: list[float | None] = []
    running: float | None = None
    for t in trials:
        if t.status in ("ok", "stopped") and t.val_acc is not None:
            running = t.val_acc if running is None else max(running, t.val_acc)
        curve.append(running)
    b = best[0] if best else None
    return {"name": name, "strategy": note["strategy"], "seed": note["seed"], "seconds": note["seconds"],
            "runs": note["runs"], "trials": len(trials),
            "ok": sum(t.status == "ok" for t in trials), "stopped": sum(t.status == "stopped" for t in trials),
            "failed": sum(t.status == "failed" for t in trials),
            "final_best_val": curve[-1] if curve else None,
            "best": None if b is None else {"trial_id": b.id, "position": [t.id for t in trials].index(b.id) + 1,
                                            "status": b.status, "val_acc": b.val_acc, "test_acc": b.test_acc,
                                            "epochs": len(b.epochs), "hash": b.arch_hash,
                                            "params": arch.params if arch else None,
                                            "derivation": arch.derivation if arch else None},
            "curve": curve, "val_accs": [t.val_acc for t in trials], "statuses": [t.status for t in trials],
            "warnings": note.get("warnings", [])}


def first_reach(curve: Sequence[float | None], target: float | None, eps: float = 1e-9) -> int | None:
    """1-based number of trainings after which ``curve`` is >= ``target`` (``None`` if never)."""
    if target is None:
        return None
    for i, v in enumerate(curve):
        if v is not None and v >= target - eps:
            return i + 1
    return None


def mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(vals) if vals else None


def stdev(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.stdev(vals) if len(vals) > 1 else None


def mean_curve(curves: Sequence[Sequence[float | None]], budget: int) -> list[float | None]:
    return [mean([c[i] if i < len(c) else (c[-1] if c else None) for c in curves]) for i in range(budget)]


def round_up(k: int | None, batch: int, budget: int) -> int | None:
    """Trainings at the end of the round in which training ``k`` happened (a round's trials run as one Tune run)."""
    return None if k is None else min(math.ceil(k / batch) * batch, budget)


def analyse(results: list[dict[str, Any]], strategies: list[str], seeds: list[int], budget: int,
            batch: int) -> dict[str, Any]:
    by = {(r["strategy"], r["seed"]): r for r in results}
    per_strategy: dict[str, Any] = {}
    for s in strategies:
        rows = [by[(s, seed)] for seed in seeds if (s, seed) in by]
        per_strategy[s] = {
            "label": LABELS[s], "seeds": [r["seed"] for r in rows],
            "final_best_val_mean": mean([r["final_best_val"] for r in rows]),
            "final_best_val_std": stdev([r["final_best_val"] for r in rows]),
            "test_of_best_mean": mean([r["best"]["test_acc"] if r["best"] else None for r in rows]),
            "test_of_best_std": stdev([r["best"]["test_acc"] if r["best"] else None for r in rows]),
            "seconds_mean": mean([r["seconds"] for r in rows]),
            "failed_total": sum(r["failed"] for r in rows), "stopped_total": sum(r["stopped"] for r in rows),
            "mean_curve": mean_curve([r["curve"] for r in rows], budget),
        }
    reach: dict[str, Any] = {}
    if BASELINE in per_strategy:
        base_mean_final = per_strategy[BASELINE]["final_best_val_mean"]
        base_mean_curve = per_strategy[BASELINE]["mean_curve"]
        for s in strategies:
            if s == BASELINE:
                continue
            per_seed = []
            for seed in seeds:
                if (s, seed) not in by:
                    continue
                curve = by[(s, seed)]["curve"]
                target_same = by[(BASELINE, seed)]["final_best_val"] if (BASELINE, seed) in by else None
                k_same = first_reach(curve, target_same)
                k_base = first_reach(by[(BASELINE, seed)]["curve"], target_same) if (BASELINE, seed) in by else None
                per_seed.append({"seed": seed, "random_final_best": target_same, "random_reached_at": k_base,
                                 "trainings_to_reach_same_seed": k_same,
                                 "trainings_to_reach_same_seed_round_end": round_up(k_same, batch, budget),
                                 "trainings_to_reach_random_mean": first_reach(curve, base_mean_final)})
            ks = [p["trainings_to_reach_same_seed"] for p in per_seed]
            reached = [k for k in ks if k is not None]
            k_mean_curve = first_reach(per_strategy[s]["mean_curve"], base_mean_final)
            half = budget / 2
            ks_round = [round_up(k, batch, budget) for k in ks]
            reach[s] = {
                "per_seed": per_seed,
                "reached_seeds": len(reached), "seeds": len(ks),
                "mean_trainings_same_seed": mean([float(k) for k in reached]) if len(reached) == len(ks) and ks
                else None,
                # unreached seeds counted as budget + 1 (a lower bound of the true mean)
                "mean_trainings_same_seed_lower_bound": mean([float(k if k is not None else budget + 1) for k in ks]),
                "mean_curve_trainings_to_reach_random_mean": k_mean_curve,
                "random_mean_curve_reaches_own_final_at": first_reach(base_mean_curve, base_mean_final),
                "goal_trainings": half,
                "goal_met_every_seed": bool(ks) and all(k is not None and k <= half for k in ks),
                "goal_met_seeds": sum(k is not None and k <= half for k in ks),
                "goal_met_mean_curve": k_mean_curve is not None and k_mean_curve <= half,
                # the same at round granularity: a round's trials are trained together, so the search only "has"
                # a result once its round is over (the strict reading of "trainings needed")
                "mean_trainings_same_seed_round_end": mean([float(k) for k in ks_round]) if ks and None not in ks_round
                else None,
                "goal_met_every_seed_round_end": bool(ks) and all(k is not None and k <= half for k in ks_round),
                "goal_met_seeds_round_end": sum(k is not None and k <= half for k in ks_round),
            }
    return {"per_strategy": per_strategy, "reach": reach}


# ------------------------------------------------------------------------------------------------ report


def fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def pct(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{100 * v:.{digits}f}"


def checkpoints(budget: int) -> list[int]:
    step = 5 if budget >= 10 else 1
    points = list(range(step, budget + 1, step))
    if points[-1] != budget:
        points.append(budget)
    return [1] + points if points[0] != 1 else points


def k_text(k: int | None, budget: int) -> str:
    return f"not reached (> {budget})" if k is None else str(k)


def tables(report: dict[str, Any]) -> list[str]:
    budget = report["budget"]
    a, results = report["analysis"], report["searches"]
    lines = ["### Per strategy (mean ± std over seeds)", "",
             "| strategy | seeds | final best val acc (%) | test acc of best-by-val (%) | wall time (s) | "
             "stopped / failed trials |", "|---|---|---|---|---|---|"]
    for s, row in a["per_strategy"].items():
        std_v = "" if row["final_best_val_std"] is None else f" ± {pct(row['final_best_val_std'])}"
        std_t = "" if row["test_of_best_std"] is None else f" ± {pct(row['test_of_best_std'])}"
        lines.append(f"| `{s}`: {row['label']} | {len(row['seeds'])} | {pct(row['final_best_val_mean'])}{std_v} | "
                     f"{pct(row['test_of_best_mean'])}{std_t} | {fmt(row['seconds_mean'], 0)} | "
                     f"{row['stopped_total']} / {row['failed_total']} |")
    lines += ["", "### Per search", "",
              "| strategy | seed | final best val (%) | best found at training # | test of best (%) | best's status, "
              "epochs | params | ok / stopped / failed | wall (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        b = r["best"] or {}
        lines.append(f"| `{r['strategy']}` | {r['seed']} | {pct(r['final_best_val'])} | {b.get('position', '-')} | "
                     f"{pct(b.get('test_acc'))} | {b.get('status', '-')}, {b.get('epochs', '-')} | "
                     f"{b.get('params', '-')} | {r['ok']} / {r['stopped']} / {r['failed']} | {r['seconds']:.0f} |")
    points = checkpoints(budget)
    lines += ["", "### Mean best-so-far validation accuracy (%) after N trainings", "",
              "| strategy | " + " | ".join(f"N={n}" for n in points) + " |",
              "|---|" + "---|" * len(points)]
    for s, row in a["per_strategy"].items():
        lines.append(f"| `{s}` | " + " | ".join(pct(row["mean_curve"][n - 1]) for n in points) + " |")
    if a["reach"]:
        lines += ["", f"### Trainings needed to reach random search's final best (goal: <= {budget // 2} = 50% of "
                      f"{budget})", "",
                  "| strategy | seed | random's final best (%) | random itself reached it at | trainings to reach it "
                  "(same seed) | the same, counted at the end of its round | trainings to reach random's mean final "
                  "best |", "|---|---|---|---|---|---|---|"]
        for s, row in a["reach"].items():
            for p in row["per_seed"]:
                lines.append(f"| `{s}` | {p['seed']} | {pct(p['random_final_best'])} | {p['random_reached_at']} | "
                             f"{k_text(p['trainings_to_reach_same_seed'], budget)} | "
                             f"{k_text(p['trainings_to_reach_same_seed_round_end'], budget)} | "
                             f"{k_text(p['trainings_to_reach_random_mean'], budget)} |")
        lines += ["", "| strategy | mean trainings (same seed) | seeds within 50% | mean curve reaches random's mean "
                      "final best at | goal met (every seed / mean curve) | at round granularity: mean trainings, "
                      "seeds within 50% |", "|---|---|---|---|---|---|"]
        for s, row in a["reach"].items():
            m = row["mean_trainings_same_seed"]
            mean_txt = fmt(m, 1) if m is not None else \
                f">= {fmt(row['mean_trainings_same_seed_lower_bound'], 1)} ({row['seeds'] - row['reached_seeds']} " \
                "seed(s) never reached it; counted as budget + 1)"
            lines.append(f"| `{s}` | {mean_txt} | {row['goal_met_seeds']} / {row['seeds']} | "
                         f"{k_text(row['mean_curve_trainings_to_reach_random_mean'], budget)} "
                         f"(random's own mean curve: {row['random_mean_curve_reaches_own_final_at']}) | "
                         f"{'yes' if row['goal_met_every_seed'] else 'no'} / "
                         f"{'yes' if row['goal_met_mean_curve'] else 'no'} | "
                         f"{fmt(row['mean_trainings_same_seed_round_end'], 1)}, "
                         f"{row['goal_met_seeds_round_end']} / {row['seeds']} |")
    return lines


def markdown(report: dict[str, Any], verdict: list[str]) -> str:
    m = report["machine"]
    cfg = report["base_config"]
    lines = [
        "# Search efficiency: random vs regularised evolution vs predictor/proxy-ranked evolution", "",
        f"Generated {report['date']} by `benchmarks/search_efficiency.py` (commit `{report['commit']}`).", "",
        f"Command: `{report['command']}`", "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, torch {m['torch']}, ray {m['ray']}. "
        f"{report['machine_note']} Sum of the {len(report['searches'])} searches' wall times: "
        f"{report['searches_seconds_sum']:.0f} s (a full run from an empty `--workdir` takes this plus a few seconds); "
        "wall time of the invocation that wrote this report: "
        f"{report['total_seconds']:.0f} s ({report['searches_run']} search(es) run or resumed by it, the rest read "
        "back from `--workdir`).", "",
        "## Setup", "",
        f"* Every search is a real `nas.search.run_search` on **{cfg['dataset']}** with **{cfg['space']}** and the "
        "platform's default `SearchConfig` otherwise (Ray Tune, ASHA with grace period "
        f"{cfg['tune']['grace_period']} and reduction factor {cfg['tune']['reduction_factor']}, "
        f"{cfg['train']['epochs']} epochs at most, {cfg['train']['optimizer']} lr {cfg['train']['lr']}, objectives "
        f"{cfg['objectives']}, limits {cfg['limits']}), each in its own SQLite store in a temporary folder.",
        f"* **Equal budgets**: every search trains exactly **{report['budget']}** candidates, in rounds of "
        f"{report['batch']}; seeds {report['seeds']} (the search's seed also fixes the data split and the training "
        "seed, so strategies of one seed share them).",
        "* **No seed networks** (`seeds: []`) in any search: the default search trains four shipped known-good "
        "networks first, which would put every strategy at ~99% from the first round; here every candidate comes "
        "from the strategy, so the comparison is about the search alone.",
        "* Strategies: " + "; ".join(f"`{s}` = {LABELS[s]} ({json.dumps(STRATEGIES[s])})"
                                     for s in report["strategies"]) + ".",
        "* Best-so-far curve: the best validation accuracy over the first N trained candidates, in trial id order "
        "(the order they were queued); `ok`, `stopped` (ASHA) and `failed` trials all count as trainings. A "
        "`stopped` trial's accuracy is the one at the epoch where ASHA stopped it. Test accuracy is the best-by-val "
        "trial's test accuracy (at the same epoch). Validation split: digits' seeded stratified split "
        f"({report['val_size']} images, so one image = {pct(1 / report['val_size'])} "
        "points).",
        "* A round's candidates are all proposed before any of them is trained, then trained as one Tune run "
        "(two at a time on 2 CPUs, in queue order). In the first round evolution samples at random like random "
        "search (its population is not full yet); only the ranked strategies select already. They queue their "
        "best-ranked candidates first, so counting by trial id also credits the ranking inside a round. The column "
        "*counted at the end of its round* removes that credit: it rounds every count up to the end of the round "
        f"(multiples of {report['batch']}).",
        "", "## Results", ""]
    lines += tables(report)
    lines += ["", "## Verdict", ""] + verdict + ["", "## Reading the numbers", ""] + notes(report)
    if report.get("plot"):
        lines += ["", f"![mean best-so-far curves]({Path(report['plot']).name})"]
    lines += ["", "## Reproduce", "", "```bash", report["command"], "```", "",
              "Resumable: finished searches in `--workdir` are read back, an unfinished one is resumed; partial runs "
              "(`--strategies random --seeds 0`) can be combined by a final run over everything."]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    budget = report["budget"]
    x = list(range(1, budget + 1))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {}
    for s, row in report["analysis"]["per_strategy"].items():
        ys = [math.nan if v is None else 100 * v for v in row["mean_curve"]]
        (line,) = ax.plot(x, ys, lw=2.2, label=f"{s} (mean)", drawstyle="steps-post")
        colors[s] = line.get_color()
    for r in report["searches"]:
        ys = [math.nan if v is None else 100 * v for v in r["curve"]]
        ax.plot(x[:len(ys)], ys, lw=0.8, alpha=0.4, color=colors.get(r["strategy"]), drawstyle="steps-post")
    base = report["analysis"]["per_strategy"].get(BASELINE)
    if base and base["final_best_val_mean"] is not None:
        ax.axhline(100 * base["final_best_val_mean"], ls="--", color="grey", lw=1, label="random's mean final best")
    ax.axvline(budget / 2, ls=":", color="black", lw=1, label="50% of the budget")
    ax.set_xlabel("candidates trained")
    ax.set_ylabel("best-so-far validation accuracy (%)")
    ax.set_title(f"einspace on digits, {len(report['seeds'])} seeds, no seed networks")
    lows = [100 * v for r in report["searches"] for v in r["curve"][report["batch"] - 1:] if v is not None]
    if lows:
        ax.set_ylim(max(min(lows) - 1, 0), 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def verdict_lines(report: dict[str, Any]) -> list[str]:
    budget, batch = report["budget"], report["batch"]
    reach = report["analysis"]["reach"]
    out = []
    for s, row in reach.items():
        ks = [p["trainings_to_reach_same_seed"] for p in row["per_seed"]]
        kr = [p["trainings_to_reach_same_seed_round_end"] for p in row["per_seed"]]
        m = row["mean_trainings_same_seed"]
        mean_txt = f"mean {fmt(m, 1)}" if m is not None else \
            f"mean >= {fmt(row['mean_trainings_same_seed_lower_bound'], 1)}"
        yes = "**yes**" if row["goal_met_every_seed"] else "**no**"
        out.append(f"* `{s}` vs `random`. Trainings needed to reach random search's final best of the same seed: "
                   f"{', '.join(k_text(k, budget) for k in ks)} ({mean_txt}; goal <= {budget // 2}). Goal met on "
                   f"every seed: {yes} ({row['goal_met_seeds']}/{row['seeds']} seeds within 50%). Its mean curve "
                   "reaches random's mean final best after "
                   f"{k_text(row['mean_curve_trainings_to_reach_random_mean'], budget)} trainings "
                   f"({'within' if row['goal_met_mean_curve'] else 'not within'} 50%). Counted only at the end of "
                   f"each round of {batch}: {', '.join(k_text(k, budget) for k in kr)} "
                   f"({row['goal_met_seeds_round_end']}/{row['seeds']} seeds within 50%).")
    return out


def notes(report: dict[str, Any]) -> list[str]:
    """Context for the verdict, computed from the results (spread, test accuracy, cost, ASHA)."""
    ps = report["analysis"]["per_strategy"]
    out = []
    base = ps.get(BASELINE)
    if base:
        vals = [r["final_best_val"] for r in report["searches"] if r["strategy"] == BASELINE]
        out.append(f"* Seed-to-seed spread: random search's final best ranges {pct(min(vals))}-{pct(max(vals))}% "
                   f"over {len(vals)} seeds, against a validation set of {report['val_size']} images (one image = "
                   f"{pct(1 / report['val_size'])} points). With this many seeds, a difference of one or two "
                   "images in a single seed is noise.")
        stds = [row["test_of_best_std"] or 0.0 for row in ps.values()]
        tests = ", ".join(f"`{s}` {pct(row['test_of_best_mean'])}%" for s, row in ps.items())
        spread = max(row["test_of_best_mean"] for row in ps.values()) - min(row["test_of_best_mean"]
                                                                             for row in ps.values())
        out.append(f"* Test accuracy of the best-by-val architecture: {tests}. The largest difference "
                   f"({pct(spread)} points) is {'smaller' if spread < max(stds) else 'larger'} than the seed-to-seed "
                   f"standard deviation (up to {pct(max(stds))} points). The reach numbers are measured on "
                   "validation accuracy, the same numbers the search selects by.")
        for s, row in ps.items():
            if s != BASELINE and STRATEGIES[s]["scorers"] and base["seconds_mean"]:
                out.append(f"* Cost of the ranking: `{s}` took {row['seconds_mean'] / base['seconds_mean']:.2f}x "
                           "random search's mean wall time. That includes scoring the extra proposals with the "
                           "predictor and `zen` before each round. On this shared machine wall times are noisy.")
    stopped = sum(r["stopped"] for r in report["searches"])
    total = sum(r["trials"] for r in report["searches"])
    if total:
        out.append(f"* ASHA stopped {stopped} of {total} trials ({100 * stopped / total:.0f}%) early, after 5 or 15 "
                   "epochs. A stopped trial counts as a training with its partial accuracy, the same for every "
                   "strategy.")
    if "evolution" in ps:
        out.append(f"* Regularised evolution (population = batch = {report['batch']}, tournament "
                   f"{max(2, (report['batch'] + 1) // 3)}) gets only {report['budget'] // report['batch'] - 1} "
                   "evolved round(s) in this budget. Its first round is random sampling.")
    return out


def machine_info() -> dict[str, Any]:
    import ray
    import torch

    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "ray": ray.__version__}


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def print_table(report: dict[str, Any]) -> None:
    print("\n".join(tables(report)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES, choices=list(STRATEGIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=30, help="candidates trained per search (default 30)")
    parser.add_argument("--batch", type=int, default=10, help="candidates trained per round (default 10)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs per trial (default: the platform's default, 20)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "nas_search_efficiency",
                        help="where the per-search SQLite stores live (default $TMPDIR/nas_search_efficiency)")
    parser.add_argument("--fresh", action="store_true", help="delete the requested searches first")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_efficiency.json")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--machine-note", default="Shared machine: another long CPU job ran beside this benchmark, "
                        "so wall times are inflated and noisy.")
    args = parser.parse_args(argv)

    strategies = [s for s in STRATEGIES if s in args.strategies]  # fixed order, random first
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for s in strategies:
            for seed in args.seeds:
                for p in args.workdir.glob(f"{s}-s{seed}.*"):
                    p.unlink()
                shutil.rmtree(args.workdir / f"{s}-s{seed}_artifacts", ignore_errors=True)
    started = time.perf_counter()
    notes, ran = [], 0
    for seed in args.seeds:  # interleaved, so that partial runs and the neighbour's load are spread evenly
        for s in strategies:
            config = search_config(s, seed, args.budget, args.batch, args.epochs)
            before = json.loads((args.workdir / f"{s}-s{seed}.json").read_text()).get("status") \
                if (args.workdir / f"{s}-s{seed}.json").exists() else None
            notes.append(run_one(s, seed, config, args.workdir))
            ran += before != "finished"
    total = time.perf_counter() - started
    results = [read_search(n) for n in notes]
    from nas.data import load_dataset

    val_size = len(load_dataset("digits", seed=args.seeds[0]).val)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/search_efficiency.py"] + argv_list)
    report: dict[str, Any] = {
        "command": command, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": git_commit(), "machine": machine_info(), "machine_note": args.machine_note,
        "total_seconds": total, "searches_run": ran, "strategies": strategies, "seeds": args.seeds,
        "budget": args.budget, "batch": args.batch, "val_size": val_size,
        "base_config": search_config(BASELINE, args.seeds[0], args.budget, args.batch, args.epochs).to_dict(),
        "configs": {s: STRATEGIES[s] for s in strategies},
        "analysis": analyse(results, strategies, args.seeds, args.budget, args.batch), "searches": results,
        "searches_seconds_sum": sum(r["seconds"] for r in results),
    }
    report["verdict"] = verdict_lines(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_plot:
        p = plot(report, args.out.with_suffix(".png"))
        report["plot"] = None if p is None else str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report, report["verdict"]))
    print()
    print_table(report)
    print()
    print("\n".join(report["verdict"]))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
