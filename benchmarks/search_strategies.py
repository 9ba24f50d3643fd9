"""Every search strategy on the tabular benchmarks, many seeds, beside greedy baselines, unconstrained and under
size constraints.

    python benchmarks/search_strategies.py                       # 100 seeds x 200 evaluations (see --help)
    python benchmarks/search_strategies.py --seeds 5 --tables nb-macro     # a quick look

**What runs.** Each search is the platform's table search (:func:`nas.search.simulate.simulate_table_search`: the
strategies, scorers, round selection and table evaluator of ``nas search run --evaluator table:PATH``, with
trials kept in memory instead of the SQL store, so 10^4 searches fit in an hour; ``tests/nas/search/test_table_search.py``
checks that it evaluates exactly what the stored search evaluates). The search config is the platform's default
except for the strategy and scorers: rounds of ``batch`` 8, ``oversample`` 4 scored per evaluated candidate
(1 for ``guided``, which breeds and ranks 16 children per slot itself), population 8 and tournament 3 for the
evolutionary strategies, ``budget`` evaluations (200).

**Tables** (``../shared/data``): NAS-Bench-Macro (6,561 CIFAR-10 networks, three runs each: a trial observes one
run drawn with the search's seed, the score of what it found is the mean of the runs) and NATS-Bench SSS (32,768,
CIFAR-10 column). Accuracy of an architecture = the table's mean; best-so-far = the best mean among the
architectures evaluated so far (what the search found), regret = the task's best minus that.

**Tasks**: ``unconstrained``; ``flops<=p10``, ``flops<=p25``, ``params<=p10``, ``params<=p25``: best accuracy
among the architectures whose FLOPs (params) are at most the table's 10th / 25th percentile, imposed through the
search's ``limits`` (``max_flops`` / ``max_params``), as a user would. Limits count the body without the
classifier head, which adds the same constant to every network of a space, so the feasible set is exactly the
table's percentile set (checked against the table's own ``params``/``flops`` where it has them).

**Arms**: greedy baselines (evaluate the feasible architectures in decreasing ``params``, ``flops``, ``synflow``,
``l2_norm``, or the zero-shot predictor's score; ties broken at random per seed), and every strategy (random,
evolution, guided, adaptive, optuna) without scorers and with the ``predictor`` or ``synflow`` scorer. Arms run
in three tiers by cost: tier 1 (greedy, random, random+predictor, evolution, evolution+predictor, adaptive) on
``--seeds`` (100), tier 2 (the synflow scorers, adaptive+predictor) on ``--tier2-seeds`` (10), tier 3 (guided,
optuna: 15-100 s a search here, and they stall in small constrained spaces) on ``--tier3-seeds`` (1); a
fewer-seed arm is compared with the others on its seeds only. The online surrogate (``surrogate``, tier 1:
:mod:`nas.search.strategies.surrogate`, the table's zero-shot prior refitted on the search's results, its inputs
the prior's feature rows of the catalogue plus log params, log FLOPs and the table's data-free proxies) runs with
three tier-2 ablations: ``surrogate-norefit`` (the prior ranks throughout), ``surrogate-mean`` (the ensemble mean
instead of Thompson sampling), ``surrogate-noproxy`` (size inputs only, no zero-cost proxies) and one variant,
``surrogate-wide`` (100 candidates per slot instead of 5); the report
states the issue's goals for it and whether each is met, and tests it against regularised evolution too. ``guided+synflow`` and ``optuna+predictor`` run only
with ``--arms all``. NATS-SSS has no synflow (0.1-0.5 s a network here: hours for 32,768), so its synflow arms
are left out.

**Fairness.** The predictor scorer never saw the benchmarked space: on NAS-Bench-Macro it is the prior trained
without NAS-Bench-Macro (``benchmarks/results/priors/without-nb-macro-cifar10``); on NATS-SSS the prior
trained without any NATS-SSS corpus (``benchmarks/results/priors/without-nats-sss``; the shipped default has seen
NATS-SSS since the predictor issue). A catalogue records the sha256 of the predictor files its scores came from
and is rebuilt when they differ. Zero-cost proxies are data-free here (synflow: all-ones input; l2_norm: the initial weights), computed
once per architecture with seed 0.

**Catalogue.** Per table, every architecture's hash, sizes, synflow and l2_norm are computed once (two processes)
into ``benchmarks/results/search_strategies/catalogue-<table>.json.gz``, and its predictor input row (the ONNX
file's encoded features, which do not depend on the predictor's weights) into ``catalogue-<table>.features.npz``
(both committed; rebuilt when missing or with ``--rebuild``); the ``predictor`` column is the prior's score of
those rows, recomputed when the prior's files change. Build times are reported apart from the searches'.

**Statistics** (per table x task x arm, over seeds): mean best-so-far and regret after 10/25/50/100/200
evaluations with 95% percentile-bootstrap intervals; median evaluations to reach the task's top 1%, top 0.1% and
best (a seed that never reaches it counts as > budget); the area under the regret curve (mean regret over the
budget) compared, paired over seeds, with random search and with the best greedy baseline of the task by a
two-sided Wilcoxon signed-rank test, Holm-corrected within each task; "better" means significantly lower area.

Output: ``benchmarks/results/search_strategies.{md,json}`` and ``benchmarks/results/search_strategies/*.png``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
DATA = REPO.parent / "shared" / "data"
RESULTS = ROOT / "results"
OUT_DIR = RESULTS / "search_strategies"
PRIORS = RESULTS / "priors"

TABLES = {
    "nb-macro": {"space": "nb-macro", "file": DATA / "nas-bench-macro" / "nas-bench-macro_cifar10.json",
                 "proxies": ("synflow", "l2_norm"), "predictor": PRIORS / "without-nb-macro-cifar10", "predictor_note":
                     "prior trained without NAS-Bench-Macro (benchmarks/results/priors/without-nb-macro-cifar10)"},
    "nats-sss": {"space": "nats-sss", "file": DATA / "nats-sss" / "nats-sss.json", "proxies": ("l2_norm",),
                 "predictor": PRIORS / "without-nats-sss", "predictor_note":
                     "prior trained without NATS-SSS (benchmarks/results/priors/without-nats-sss)"},
}
TASKS = ("unconstrained", "flops<=p10", "flops<=p25", "params<=p10", "params<=p25")
GREEDY = ("params", "flops", "synflow", "l2_norm", "predictor")
CHECKPOINTS = (10, 25, 50, 100, 200)
PROXIES = ("synflow", "l2_norm")


@dataclass(frozen=True)
class Arm:
    """One thing compared: a greedy order (``greedy`` set) or a strategy with scorers; ``tier`` 2 and 3 arms may
    run on fewer seeds (``--tier2-seeds``, ``--tier3-seeds``) when the machine's time is short."""

    name: str
    strategy: str | None = None
    scorers: tuple[str, ...] = ()
    greedy: str | None = None
    tier: int = 1
    options: tuple[tuple[str, Any], ...] = ()  # strategy options (the surrogate's ablations)


STRATEGY_ARMS = (
    Arm("random", "random"), Arm("random+predictor", "random", ("predictor",)),
    Arm("random+synflow", "random", ("synflow",), tier=2),
    Arm("evolution", "evolution"), Arm("evolution+predictor", "evolution", ("predictor",)),
    Arm("evolution+synflow", "evolution", ("synflow",), tier=2),
    Arm("guided+predictor", "guided", ("predictor",), tier=3), Arm("guided+synflow", "guided", ("synflow",), tier=3),
    Arm("adaptive", "adaptive"), Arm("adaptive+predictor", "adaptive", ("predictor",), tier=2),
    Arm("optuna", "optuna", tier=3), Arm("optuna+predictor", "optuna", ("predictor",), tier=3),
    Arm("surrogate", "surrogate"),
    Arm("surrogate-norefit", "surrogate", tier=2, options=(("refit", False),)),
    Arm("surrogate-mean", "surrogate", tier=2, options=(("acquisition", "mean"),)),
    Arm("surrogate-noproxy", "surrogate", tier=2, options=(("proxies", ("params", "flops")),)),
    # a 20x larger candidate pool per slot (cheap here, where feature rows are read from the catalogue; costly when
    # each candidate must be built and encoded): an exploratory 10-seed run favoured it on 4 of 4 tasks
    Arm("surrogate-wide", "surrogate", tier=2, options=(("candidates_per_slot", 100),)),
)
GREEDY_ARMS = tuple(Arm(f"greedy:{g}", greedy=g) for g in GREEDY)


# ------------------------------------------------------------------------------------------------- catalogue


def _catalogue_rows(args: tuple[str, list[str], int, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Hash, sizes and data-free proxies of architectures (a worker of the catalogue build): one graph and one
    module per architecture (the predictor's scores come from the feature rows, :func:`load_features`)."""
    import torch

    from nas.compile.torch import compile_graph
    from nas.ir.build import build_graph
    from predictors import compute_proxies
    from search_spaces.spaces import get_space

    space_name, archs, seed, proxy_names = args
    torch.set_num_threads(1)
    space = get_space(space_name, _input_shape(space_name))
    x = torch.ones(2, *_input_shape(space_name))
    y = torch.zeros(2, dtype=torch.long)
    rows = []
    for arch in archs:
        d = space.from_arch(arch)
        graph = build_graph(space, d, 10)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = compile_graph(graph)
        proxies = compute_proxies(module, x, y, names=list(proxy_names), num_classes=10, seed=seed)
        rows.append({"arch": arch, "derivation": str(d), "hash": graph.canonical_hash(), "params": graph.num_params(),
                     "flops": graph.flops(), "body_params": d.cost.params, "body_flops": d.cost.flops,
                     "nodes": d.cost.nodes, **{n: float(proxies[n].value) if n in proxies else math.nan
                                               for n in PROXIES}})
    return rows


def _input_shape(space_name: str) -> tuple[int, ...]:
    from search_spaces.spaces import space_spec

    return tuple(space_spec(space_name).example_input)


def build_catalogue(table_name: str, processes: int) -> dict[str, Any]:
    """Every architecture of the table with its hash, sizes, proxies and predictor score (see the docstring)."""
    from nas.search.evaluators import load_table
    from search_spaces.spaces import get_space

    spec = TABLES[table_name]
    space = get_space(spec["space"], _input_shape(spec["space"]))
    table = load_table(str(spec["file"]), space=space)
    archs = sorted(table.entries)
    chunks = [archs[i::processes * 8] for i in range(processes * 8)]
    started = time.perf_counter()
    with mp.get_context("fork").Pool(processes) as pool:
        jobs = [(spec["space"], c, 0, spec["proxies"]) for c in chunks]
        rows = [r for part in pool.map(_catalogue_rows, jobs) for r in part]
    by_arch = {r["arch"]: r for r in rows}
    seconds = time.perf_counter() - started
    return {"table": table_name, "space": spec["space"], "file": spec["file"].name,
            "proxies": list(spec["proxies"]), "proxy_seed": 0, "seconds": seconds, "processes": processes,
            "rows": [by_arch[a] for a in archs]}


def predictor_fingerprint(predictor: Path) -> str:
    """sha256 over the prior's files (``.json`` then ``.safetensors``): which predictor a catalogue's scores are from."""
    digest = hashlib.sha256()
    for suffix in (".json", ".safetensors"):
        digest.update(predictor.with_suffix(suffix).read_bytes())
    return digest.hexdigest()


def _feature_rows(args: tuple[str, list[str], str]) -> tuple[list[str], np.ndarray]:
    """The predictor's raw input rows of architectures (a worker of the feature build): one graph, one module and
    its weightless ONNX per architecture, encoded as :meth:`OnnxNetPredictor.features` does for ``predict``."""
    import torch

    from nas.compile.torch import compile_graph
    from nas.export.onnx import export_onnx
    from nas.ir.build import build_graph
    from predictors import OnnxNetPredictor
    from search_spaces.spaces import get_space

    space_name, archs, predictor_path = args
    torch.set_num_threads(1)
    space = get_space(space_name, _input_shape(space_name))
    predictor = OnnxNetPredictor.load(predictor_path)
    predictor.config.encode_workers = 1  # in-process: a pool worker must not fork an encoding pool
    rows = []
    for i in range(0, len(archs), 64):
        models = []
        for arch in archs[i:i + 64]:
            graph = build_graph(space, space.from_arch(arch), 10)
            models.append(export_onnx(graph, compile_graph(graph), weights=False))
        rows.append(predictor.features(predictor.encode(models)))
    return archs, np.concatenate(rows).astype(np.float32)


def feature_key(predictor: Path) -> dict[str, Any]:
    """What a predictor's raw input rows depend on (its text encoder, input variant and feature names), not its
    weights: feature rows built for one prior serve every prior with the same key."""
    meta = json.loads(predictor.with_suffix(".json").read_text())
    return {"encoder": meta["config"]["encoder"], "variant": meta["config"]["variant"],
            "use_global_features": meta["config"]["use_global_features"], "feature_names": meta["feature_names"]}


def load_features(table_name: str, processes: int, rebuild: bool) -> tuple[dict[str, int], np.ndarray]:
    """Every architecture's raw predictor input row (``catalogue-<table>.features.npz``, built when missing, stale
    or with ``--rebuild``): the zero-shot prior's scores are computed from them, and a search strategy that refits
    the predictor (the online surrogate) reads them instead of re-encoding ONNX. Returns (arch -> row, matrix)."""
    spec = TABLES[table_name]
    path = OUT_DIR / f"catalogue-{table_name}.features.npz"
    key = feature_key(spec["predictor"])
    if path.is_file() and not rebuild:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["key"])) == key:
                archs = [str(a) for a in data["arch"]]
                return {a: i for i, a in enumerate(archs)}, data["x"].astype(np.float64)
        print(f"the feature rows of {table_name} were made by another encoder: rebuilding them", flush=True)
    from nas.search.evaluators import load_table
    from search_spaces.spaces import get_space

    space = get_space(spec["space"], _input_shape(spec["space"]))
    archs = sorted(load_table(str(spec["file"]), space=space).entries)
    print(f"encoding the {len(archs)} architectures of {table_name} ({processes} processes) ...", flush=True)
    started = time.perf_counter()
    chunks = [archs[i::processes * 8] for i in range(processes * 8)]
    with mp.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_feature_rows, [(spec["space"], c, str(spec["predictor"])) for c in chunks])
    order = [a for part, _ in parts for a in part]
    x = np.concatenate([rows for _, rows in parts])
    index = {a: i for i, a in enumerate(order)}
    x = x[[index[a] for a in archs]]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, arch=np.array(archs), x=x, key=np.array(json.dumps(key)))
    print(f"  {len(archs)} feature rows in {time.perf_counter() - started:.0f} s -> {path}", flush=True)
    return {a: i for i, a in enumerate(archs)}, x.astype(np.float64)


def load_catalogue(table_name: str, processes: int, rebuild: bool) -> dict[str, Any]:
    """The table's catalogue (see the module docstring), its ``predictor`` column scored by the table's prior from
    the feature rows (re-scored in seconds when the prior's files change; proxies and sizes are kept)."""
    spec = TABLES[table_name]
    path = OUT_DIR / f"catalogue-{table_name}.json.gz"
    if path.is_file() and not rebuild:
        with gzip.open(path, "rt") as f:
            catalogue = json.load(f)
    else:
        print(f"building the catalogue of {table_name} ({processes} processes) ...", flush=True)
        catalogue = build_catalogue(table_name, processes)
        print(f"  {len(catalogue['rows'])} architectures in {catalogue['seconds']:.0f} s", flush=True)
    index, x = load_features(table_name, processes, rebuild)
    catalogue["feature_index"], catalogue["features"] = index, x
    fingerprint = predictor_fingerprint(spec["predictor"])
    if catalogue.get("predictor_sha256") != fingerprint:
        from predictors import OnnxNetPredictor

        print(f"scoring the catalogue of {table_name} with {spec['predictor'].name}", flush=True)
        prior = OnnxNetPredictor.load(spec["predictor"])
        rows = x[[index[r["arch"]] for r in catalogue["rows"]]]  # the size term: against the whole table's sizes
        scores = prior.predict_features(rows, size_reference=prior.size_reference(rows) if prior.size_raw else None)
        for row, score in zip(catalogue["rows"], scores):
            row["predictor"] = float(score)
        catalogue |= {"predictor": spec["predictor_note"], "predictor_sha256": fingerprint}
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            json.dump({k: v for k, v in catalogue.items() if k not in ("feature_index", "features")}, f)
    return catalogue


# ------------------------------------------------------------------------------------------------- tasks


def make_tasks(catalogue: dict[str, Any], table: Any) -> dict[str, dict[str, Any]]:
    """Each task's limits, feasible architectures and accuracy targets."""
    rows = catalogue["rows"]
    acc = {r["arch"]: table.entry(r["arch"]).mean for r in rows}
    tasks: dict[str, dict[str, Any]] = {}
    for task in TASKS:
        limits: dict[str, int] = {}
        feasible = [r["arch"] for r in rows]
        check = None
        if task != "unconstrained":
            what, q = task.split("<=p")
            values = np.array([r[f"body_{what}"] for r in rows])
            cap = int(np.percentile(values, float(q), method="lower"))
            limits = {f"max_{what}": cap}
            feasible = [r["arch"] for r in rows if r[f"body_{what}"] <= cap]
            own = [table.entry(r["arch"]) for r in rows]
            if all(getattr(e, what) is not None for e in own):  # the table's own counts: the same set?
                table_values = np.array([getattr(e, what) for e in own])
                table_cap = np.percentile(table_values, float(q), method="lower")
                same = {r["arch"] for r, v in zip(rows, table_values) if v <= table_cap} == set(feasible)
                check = f"same set as the table's own {what} <= its p{q}: {same}"
        accs = np.sort(np.array([acc[a] for a in feasible]))[::-1]
        n = len(accs)
        tasks[task] = {"limits": limits, "feasible": feasible, "n": n, "best": float(accs[0]),
                       "top1": float(accs[max(1, math.ceil(0.01 * n)) - 1]),
                       "top01": float(accs[max(1, math.ceil(0.001 * n)) - 1]), "check": check}
    return tasks


# ------------------------------------------------------------------------------------------------- runs

_W: dict[str, Any] = {}  # the worker's data (set before the pool forks; a benchmark script's own state)


def _setup(catalogue: dict[str, Any], table: Any, tasks: dict[str, Any], budget: int) -> None:
    from nas.search.simulate import CandidateCache, LightCandidate

    cache = CandidateCache()
    for r in catalogue["rows"]:
        cache.put(r["derivation"], LightCandidate(r["hash"], r["arch"], r["params"], r["flops"], r["body_params"],
                                                  r["body_flops"], r["nodes"]))
    _W.update(catalogue=catalogue, table=table, tasks=tasks, budget=budget, cache=cache,
              acc={r["arch"]: table.entry(r["arch"]).mean for r in catalogue["rows"]},
              raw={r["derivation"]: {n: (r[n], 0.0) for n in ("predictor", *PROXIES)} for r in catalogue["rows"]},
              rows={r["arch"]: r for r in catalogue["rows"]}, spaces={}, scorers={})


def _space(task: str) -> Any:
    from search_spaces.sampler import Limits
    from search_spaces.spaces import get_space

    if task not in _W["spaces"]:
        name = _W["catalogue"]["space"]
        base = get_space(name, _input_shape(name))
        limits = replace(base.limits, **_W["tasks"][task]["limits"])
        _W["spaces"][task] = get_space(name, _input_shape(name), limits=Limits(**vars(limits)))
    return _W["spaces"][task]


def _run(job: tuple[str, Arm, int]) -> tuple[str, str, int, list[float], list[float], float]:
    """One seeded run: the accuracy (table mean) of each evaluation in order, their simulated costs, seconds."""
    import torch

    torch.set_num_threads(1)
    task, arm, seed = job
    started = time.perf_counter()
    budget = _W["budget"]
    if arm.greedy is not None:
        feasible = _W["tasks"][task]["feasible"]
        rng = np.random.default_rng(seed)
        keys = np.array([_W["rows"][a][arm.greedy] for a in feasible], dtype=float)
        keys = np.where(np.isfinite(keys), keys, -np.inf)
        order = np.lexsort((rng.random(len(feasible)), -keys))[:budget]  # decreasing key, random tie-break
        archs = [feasible[i] for i in order]
        costs = [_W["table"].sim_cost(a, _W["rows"][a]["flops"]) for a in archs]
    else:
        from nas.search import SearchConfig
        from nas.search.simulate import simulate_table_search

        space = _space(task)
        config = SearchConfig(space=space.name, evaluator=f"table:{_W['catalogue']['file']}", budget=budget,
                              strategy=arm.strategy, scorers=arm.scorers, seed=seed, limits=_W["tasks"][task]["limits"],
                              proxy_batch=2, oversample=1 if arm.strategy == "guided" else 4)
        scorer = _scorer(arm.scorers, task) if arm.scorers else None
        extra = _surrogate_options(arm, task) if arm.strategy == "surrogate" else None
        trials = simulate_table_search(config, table=_W["table"], space=space, scorer=scorer, cache=_W["cache"],
                                       strategy_options=extra)
        archs = [t.arch for t in trials]
        costs = [t.sim_cost_s for t in trials]
    return task, arm.name, seed, [_W["acc"][a] for a in archs], costs, time.perf_counter() - started


def _surrogate_options(arm: Arm, task: str) -> dict[str, Any]:
    """The surrogate's prior (the table's zero-shot prior, loaded once per worker), its proxy inputs (the table's
    data-free proxies, unless the arm drops them) and a featurizer that reads the catalogue's feature rows instead
    of encoding ONNX (the same rows: ``catalogue-<table>.features.npz``)."""
    options = dict(arm.options)
    proxies = tuple(options.pop("proxies", ("params", "flops", *_W["catalogue"].get("proxies", PROXIES))))
    if "prior" not in _W:
        from predictors import OnnxNetPredictor

        _W["prior"] = OnnxNetPredictor.load(TABLES[_W["catalogue"]["table"]]["predictor"])
    space, cache, rows = _space(task), _W["cache"], _W["rows"]
    index, x = _W["catalogue"]["feature_index"], _W["catalogue"]["features"]

    def featurizer(derivations: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        archs = [cache.get(space, d, 10).arch for d in derivations]
        extra = np.array([[rows[a][p] for p in proxies] for a in archs], dtype=float) if proxies else None
        return x[[index[a] for a in archs]], extra

    return {**options, "featurizer": featurizer, "prior": _W["prior"], "proxies": proxies}


def _scorer(names: tuple[str, ...], task: str) -> Any:
    """The scorer of ``names`` on ``task``'s space, its raw scores preloaded from the catalogue (one per worker:
    a scorer's only state is that deterministic cache)."""
    from nas.search.scoring import Scorer

    key = (task, names)
    if key not in _W["scorers"]:
        space = _space(task)
        predictor = TABLES[_W["catalogue"]["table"]]["predictor"]
        scorer = Scorer(list(names), space=space, dataset=None, proxy_batch=2, seed=0,
                        predictor_path=str(predictor) if predictor and "predictor" in names else None,
                        input_shape=_input_shape(space.name), num_classes=10)
        scorer.preload({d: {n: v[n] for n in names} for d, v in _W["raw"].items()})
        if scorer.predictor is not None:  # a derivation outside the catalogue: scored on the catalogue's scale
            from nas.search.size_reference import rows_size_reference

            scorer.size_reference = rows_size_reference(scorer.predictor, _W["catalogue"]["features"],
                                                        f"every architecture of {_W['catalogue']['table']}")
        _W["scorers"][key] = scorer
    return _W["scorers"][key]


# ------------------------------------------------------------------------------------------------- statistics


def bootstrap_ci(values: np.ndarray, seed: int = 0, resamples: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean (scipy.stats.bootstrap); a point for constant values."""
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=float)
    if len(values) < 2 or np.all(values == values[0]):
        return float(values.mean()), float(values.mean())
    res = bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=resamples, method="percentile",
                    random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def evaluations_to(curve: np.ndarray, target: float) -> float:
    """1-based evaluations until the best-so-far reaches ``target``; ``inf`` if never."""
    hit = np.nonzero(curve >= target - 1e-12)[0]
    return float(hit[0] + 1) if len(hit) else math.inf


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired samples (1.0 when they never differ)."""
    from scipy.stats import wilcoxon

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if np.allclose(d, 0):
        return 1.0
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone)."""
    order = sorted(pvalues, key=pvalues.get)
    m, running, out = len(order), 0.0, {}
    for i, key in enumerate(order):
        running = max(running, min(1.0, (m - i) * pvalues[key]))
        out[key] = running
    return out


def summarise(task: dict[str, Any], runs: dict[str, dict[int, list[float]]], costs: dict[str, dict[int, list[float]]],
              budget: int) -> dict[str, Any]:
    """Per arm: curves, checkpoints with intervals, evaluations to targets, regret area, and the paired tests."""
    arms: dict[str, Any] = {}
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in runs.values())))  # paired: common seeds
    area: dict[str, np.ndarray] = {}
    for arm, by_seed in runs.items():
        curves = np.array([np.maximum.accumulate(np.pad(np.array(by_seed[s]), (0, budget - len(by_seed[s])),
                                                        mode="edge")) for s in seeds])
        regret = task["best"] - curves
        area[arm] = regret.mean(axis=1)
        info: dict[str, Any] = {"checkpoints": {}, "evaluations": len(by_seed[seeds[0]])}
        for k in CHECKPOINTS:
            if k > budget:
                continue
            column, r = curves[:, k - 1], regret[:, k - 1]
            info["checkpoints"][k] = {"best": float(column.mean()), "best_ci": bootstrap_ci(column),
                                      "regret": float(r.mean()), "regret_ci": bootstrap_ci(r)}
        for label, target in (("top1", task["top1"]), ("top01", task["top01"]), ("best", task["best"])):
            hits = np.array([evaluations_to(c, target) for c in curves])
            info[f"to_{label}"] = float(np.median(hits))
            info[f"reached_{label}"] = float(np.isfinite(hits).mean())
        info["regret_area"] = float(area[arm].mean())
        info["regret_area_ci"] = bootstrap_ci(area[arm])
        info["mean_curve"] = [float(v) for v in curves.mean(axis=0)]
        cum = np.array([np.cumsum(np.pad(np.array(costs[arm][s]), (0, budget - len(costs[arm][s])))) for s in seeds])
        info["mean_cost_curve"] = [float(v) for v in cum.mean(axis=0)]
        arms[arm] = info
    greedy = [a for a in arms if a.startswith("greedy:")]
    best_greedy = min(greedy, key=lambda a: arms[a]["regret_area"]) if greedy else None
    raw_p: dict[str, float] = {}
    for arm in arms:
        if arm.startswith("greedy:"):
            continue
        if arm != "random" and "random" in arms:
            raw_p[f"{arm}|random"] = wilcoxon_p(area[arm], area["random"])
        if best_greedy is not None:
            raw_p[f"{arm}|{best_greedy}"] = wilcoxon_p(area[arm], area[best_greedy])
        if arm.startswith("surrogate") and "evolution" in arms:  # the surrogate issue's goal: beat evolution
            raw_p[f"{arm}|evolution"] = wilcoxon_p(area[arm], area["evolution"])
    adjusted = holm(raw_p) if raw_p else {}
    for key, p in adjusted.items():
        arm, other = key.split("|")
        diff = float(np.mean(area[arm] - area[other]))
        verdict = "better" if p < 0.05 and diff < 0 else "worse" if p < 0.05 and diff > 0 else "n.s."
        arms[arm].setdefault("tests", {})[other] = {"p_holm": p, "p_raw": raw_p[key], "area_diff": diff,
                                                    "verdict": verdict}
    return {"best_greedy": best_greedy, "arms": arms}


# ------------------------------------------------------------------------------------------------- report


def _fmt_evals(x: float, budget: int) -> str:
    return f">{budget}" if not math.isfinite(x) else f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def write_report(result: dict[str, Any], out: Path) -> None:
    lines = ["# Search strategies on tabular benchmarks", "",
             "Accuracy is the table's mean over its runs (NAS-Bench-Macro: a trial observes one of the three runs, "
             "drawn with the search's seed). Best-so-far: the best accuracy among the architectures evaluated so "
             "far; regret: the task's best minus it (points of accuracy x 100 below). `to top 0.1%`: median "
             "evaluations until an architecture of the task's top 0.1% is evaluated (`>N`: fewer than half of the "
             "seeds got there within the budget). Tests: regret area (mean regret over the budget) paired over "
             "seeds, two-sided Wilcoxon signed-rank, Holm-corrected within the task; **better** = significantly "
             "lower area. Search config: the platform's defaults (batch 8, oversample 4, population 8, "
             "tournament 3; guided: oversample 1, 16 children ranked per slot) except strategy and scorers.", ""]
    lines += ["## Summary", "", "Median evaluations to reach each task's top 0.1% (`>N`: not reached by half of the seeds "
              "within the budget), and the strategies whose regret area is significantly lower than both random "
              "search's and the best greedy baseline's (evaluations to top 0.1% in brackets).", "",
              "| table · task | feasible | random | best greedy | fastest strategy (all seeds) | better than random "
              "and best greedy |", "|---|---|---|---|---|---|"]
    for table, info in result["tables"].items():
        for task_name, task in info["tasks"].items():
            summary = task["summary"]
            arms = summary["arms"]
            strategies = {a: v for a, v in arms.items() if not a.startswith("greedy:")}
            full = {a: v for a, v in strategies.items() if "seeds" not in v}  # fewer-seed arms are not ranked here
            fastest = min(full, key=lambda a: (full[a]["to_top01"], full[a]["regret_area"]))
            g = summary["best_greedy"]
            winners = [a for a, v in strategies.items() if v.get("tests", {}).get("random", {}).get("verdict")
                       == "better" and v.get("tests", {}).get(g, {}).get("verdict") == "better"]
            b = info["budget"]
            lines.append(f"| {table} · {task_name} | {task['n']} | {_fmt_evals(arms['random']['to_top01'], b)} | "
                         f"`{g}`: {_fmt_evals(arms[g]['to_top01'], b)} | `{fastest}`: "
                         f"{_fmt_evals(strategies[fastest]['to_top01'], b)} | "
                         + (", ".join(f"`{w}` ({_fmt_evals(arms[w]['to_top01'], b)}"
                                      + (f", {arms[w]['seeds']} seeds" if "seeds" in arms[w] else "") + ")"
                                      for w in winners) or "none")
                         + " |")
    lines.append("")
    for table, info in result["tables"].items():
        tiers = info["tier_seeds"]
        lines += [f"## {table}", "", f"Command: `{info['command']}`: {info['seeds']} seeds x {info['budget']} "
                  f"evaluations per task and arm (synflow-scored and adaptive+predictor arms: {tiers['2']} seeds, "
                  f"guided and optuna arms: {tiers['3']} seeds, each compared with the others on those seeds); the searches "
                  f"took "
                  f"{info['seconds']:.0f} s on {info['processes']} processes ({info['machine']}, a shared machine); "
                  f"the catalogue (built once, then read back) {info['catalogue_seconds']:.0f} s. "
                  f"Predictor scorer: {info['predictor']}.", ""]
        budget = info["budget"]
        for task_name, task in info["tasks"].items():
            s = task["summary"]
            lines += [f"### {table} · {task_name}", "",
                      f"{task['n']} feasible architectures" + (f", limits {task['limits']}" if task["limits"] else "")
                      + f"; best {100 * task['best']:.2f}, top 1% >= {100 * task['top1']:.2f}, top 0.1% >= "
                      f"{100 * task['top01']:.2f}" + (f"; {task['check']}" if task.get("check") else "")
                      + f". Best greedy baseline: `{s['best_greedy']}`.", "",
                      "| arm | best@10 | best@50 | best@200 [95% CI] | regret@200 | to top 1% | to top 0.1% | to best | "
                      "regret area | vs random | vs best greedy |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]
            for arm, a in s["arms"].items():
                cp = {int(k): v for k, v in a["checkpoints"].items()}  # JSON keys are strings
                last = cp[max(cp)]
                tests = a.get("tests", {})

                def verdict(other: str | None) -> str:
                    if other is None or other not in tests:
                        return ""
                    t = tests[other]
                    return f"**{t['verdict']}** (p={t['p_holm']:.2g})" if t["verdict"] != "n.s." else \
                        f"n.s. (p={t['p_holm']:.2g})"

                lines.append(
                    f"| {arm} | {100 * cp[10]['best']:.2f} | {100 * cp[50]['best']:.2f} | {100 * last['best']:.2f} "
                    f"[{100 * last['best_ci'][0]:.2f}, {100 * last['best_ci'][1]:.2f}] | {100 * last['regret']:.3f} | "
                    f"{_fmt_evals(a['to_top1'], budget)} | {_fmt_evals(a['to_top01'], budget)} | "
                    f"{_fmt_evals(a['to_best'], budget)} | {100 * a['regret_area']:.3f} | {verdict('random')} | "
                    f"{verdict(s['best_greedy'])} |")
            winners = [arm for arm, a in s["arms"].items() if a.get("tests", {}).get("random", {}).get("verdict")
                       == "better" and a.get("tests", {}).get(s["best_greedy"], {}).get("verdict") == "better"]
            lines += ["", "Significantly better than both random search and the best greedy baseline: "
                      + (", ".join(f"`{w}`" for w in winners) if winners else "**none**") + ".", ""]
    lines += surrogate_goals(result)
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in result.get("plots", [])] + [""]
    out.write_text("\n".join(lines))


def surrogate_goals(result: dict[str, Any]) -> list[str]:
    """The online-surrogate issue's goals, per table and task, for the ``surrogate`` arm (when it ran):
    unconstrained: median evaluations to the top 0.1% at most 2x the best greedy baseline's count + 5; constrained:
    at most a third of random search's count and below every greedy baseline's, and the lowest regret area of all
    strategies, significantly below regularised evolution's (paired Wilcoxon over seeds, Holm-corrected)."""
    rows = []
    for table, info in result["tables"].items():
        budget = info["budget"]
        for task_name, task in info["tasks"].items():
            arms = task["summary"]["arms"]
            if "surrogate" not in arms:
                continue
            s = arms["surrogate"]
            mine = s["to_top01"]
            greedy = {a: v["to_top01"] for a, v in arms.items() if a.startswith("greedy:")}
            best_greedy = min(greedy.values()) if greedy else math.inf
            if task_name == "unconstrained":
                target = 2 * best_greedy + 5
                goal = f"<= 2 x {_fmt_evals(best_greedy, budget)} + 5 = {_fmt_evals(target, budget)}"
                met = "met" if mine <= target else "**not met**"
                rows.append(f"| {table} · {task_name} | {_fmt_evals(mine, budget)} | {goal} | {met} | | |")
                continue
            random_count = arms["random"]["to_top01"] if "random" in arms else math.inf
            third = (random_count if math.isfinite(random_count) else budget) / 3
            count_met = mine <= third and all(mine < g for g in greedy.values())
            goal = (f"<= {'' if math.isfinite(random_count) else '(>' + str(budget) + ') '}"
                    f"{_fmt_evals(random_count, budget)}/3 = {third:.1f} and < every greedy "
                    f"(best {_fmt_evals(best_greedy, budget)})")
            strategies = {a: v for a, v in arms.items() if not a.startswith("greedy:") and "seeds" not in v}
            best_area = min(strategies, key=lambda a: strategies[a]["regret_area"])
            test = s.get("tests", {}).get("evolution")
            vs_evolution = "n/a" if test is None else f"{test['verdict']} (p={test['p_holm']:.2g})"
            area_met = best_area == "surrogate" and test is not None and test["verdict"] == "better"
            rows.append(f"| {table} · {task_name} | {_fmt_evals(mine, budget)} | {goal} | "
                        f"{'met' if count_met else '**not met**'} | lowest: `{best_area}`; vs evolution: "
                        f"{vs_evolution} | {'met' if area_met else '**not met**'} |")
    if not rows:
        return []
    return ["## The online surrogate's goals", "",
            "The `surrogate` arm (the strategy's defaults: Thompson sampling of one head per pick, refits every 8 "
            "results and then every 50% more, size and proxy inputs) against the issue's goals: unconstrained, "
            "median evaluations to the top 0.1% at most twice the best greedy baseline's plus 5; constrained, at "
            "most a third of random search's (when random search never got there, a third of the budget) and "
            "below every greedy baseline's, and the lowest regret area of all strategies (of the arms run on "
            "every seed), significantly below regularised evolution's.", "",
            "| table · task | surrogate to top 0.1% | goal | count goal | regret area | area goal |",
            "|---|---|---|---|---|---|", *rows, ""]


def plot(result: dict[str, Any], table_dir: Path) -> list[str]:
    """Regret and cost curves per table, into ``table_dir``; returns their paths relative to its parent (where
    the report is written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for table, info in result["tables"].items():
        fig, axes = plt.subplots(1, len(info["tasks"]), figsize=(4.2 * len(info["tasks"]), 3.8), squeeze=False)
        for ax, (task_name, task) in zip(axes[0], info["tasks"].items()):
            arms = task["summary"]["arms"]
            for arm, a in arms.items():
                regret = np.maximum(task["best"] - np.array(a["mean_curve"]), 1e-5) * 100
                style = "--" if arm.startswith("greedy:") else "-"
                ax.plot(np.arange(1, len(regret) + 1), regret, style, label=arm, lw=1.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{table} · {task_name}", fontsize=9)
            ax.set_xlabel("evaluations")
            ax.set_ylabel("mean regret (points)")
        axes[0][-1].legend(fontsize=6, loc="lower left")
        fig.tight_layout()
        name = f"{table_dir.name}/regret-{table}.png"
        fig.savefig(table_dir.parent / name, dpi=110)
        plt.close(fig)
        written.append(name)
        fig, ax = plt.subplots(figsize=(6, 4))
        task = info["tasks"]["unconstrained"]
        for arm, a in task["summary"]["arms"].items():
            if arm.startswith("greedy:") and arm != task["summary"]["best_greedy"]:
                continue
            ax.plot(np.array(a["mean_cost_curve"]) / 3600, 100 * np.array(a["mean_curve"]), label=arm, lw=1.2)
        ax.set_xlabel("simulated search cost (hours)")
        ax.set_ylabel("mean best accuracy (%)")
        ax.set_title(f"{table} · unconstrained: best accuracy vs search cost", fontsize=9)
        ax.legend(fontsize=6)
        fig.tight_layout()
        name = f"{table_dir.name}/cost-{table}.png"
        fig.savefig(table_dir.parent / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="seeds per table x task x arm (default 100)")
    parser.add_argument("--budget", type=int, default=200, help="evaluations per search (default 200)")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--arms", nargs="+", default=None,
                        help="arm names, or 'all' (default: all but guided+synflow and optuna+predictor, the two "
                             "slowest: 30-100 s a search here)")
    parser.add_argument("--tier2-seeds", type=int, default=10,
                        help="seeds of the second-tier arms (synflow scorers, adaptive+predictor: 1-5 s a search "
                             "here; default 10, so that the whole run fits in an hour on 2 cores)")
    parser.add_argument("--tier3-seeds", type=int, default=1,
                        help="seeds of the third-tier arms (optuna, guided: 15-100 s a search here, and they stall "
                             "in small constrained spaces; default 1)")
    parser.add_argument("--processes", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--rebuild", action="store_true", help="rebuild the catalogues")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite the report from the per-table results already there")
    parser.add_argument("--out", type=Path, default=RESULTS / "search_strategies.json",
                        help="the report's JSON (its .md beside it); the per-table results and plots go into the "
                             "folder of the same name without the suffix (the catalogues stay in "
                             "benchmarks/results/search_strategies/)")
    args = parser.parse_args()
    table_dir = args.out.with_suffix("")

    from nas.search.evaluators import load_table
    from search_spaces.spaces import get_space

    slowest = {"guided+synflow", "optuna+predictor"}
    arms = [a for a in GREEDY_ARMS + STRATEGY_ARMS
            if (args.arms is None and a.name not in slowest) or (args.arms is not None and
                                                                  ("all" in args.arms or a.name in args.arms))]
    result: dict[str, Any] = {"command": "python benchmarks/search_strategies.py " + " ".join(sys.argv[1:]),
                              "seeds": args.seeds, "budget": args.budget, "processes": args.processes,

                              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                                         f"{platform.python_version()}",
                              "catalogues": {}, "tables": {}}
    for table_name in [] if args.report_only else args.tables:
        spec = TABLES[table_name]
        catalogue = load_catalogue(table_name, args.processes, args.rebuild)
        result["catalogues"][table_name] = {"seconds": catalogue["seconds"], "rows": len(catalogue["rows"])}
        table = load_table(str(spec["file"]), space=get_space(spec["space"], _input_shape(spec["space"])))
        available = set(catalogue.get("proxies", PROXIES)) | {"params", "flops", "predictor"}
        table_arms = [a for a in arms if (a.greedy is None or a.greedy in available)
                      and all(n in available for n in a.scorers)]
        tasks = make_tasks(catalogue, table)
        tasks = {t: tasks[t] for t in args.tasks}
        _setup(catalogue, table, tasks, args.budget)
        seeds_of = {1: args.seeds, 2: args.tier2_seeds, 3: args.tier3_seeds}
        seeds_of = {tier: min(n, args.seeds) for tier, n in seeds_of.items()}
        jobs = [(task, arm, seed) for task in tasks for arm in table_arms for seed in range(seeds_of[arm.tier])]
        jobs.sort(key=lambda j: -j[1].tier)  # the slowest first, for a balanced pool
        started = time.perf_counter()
        runs: dict[str, dict[str, dict[int, list[float]]]] = {t: {} for t in tasks}
        costs: dict[str, dict[str, dict[int, list[float]]]] = {t: {} for t in tasks}
        seconds: dict[str, float] = {}
        with mp.get_context("fork").Pool(args.processes) as pool:
            for i, (task, arm, seed, accs, cost, secs) in enumerate(pool.imap_unordered(_run, jobs, chunksize=4)):
                runs[task].setdefault(arm, {})[seed] = accs
                costs[task].setdefault(arm, {})[seed] = cost
                seconds[arm] = seconds.get(arm, 0.0) + secs
                if (i + 1) % 500 == 0:
                    print(f"  {table_name}: {i + 1}/{len(jobs)} runs, {time.perf_counter() - started:.0f} s",
                          flush=True)
        elapsed = time.perf_counter() - started
        info: dict[str, Any] = {"space": spec["space"], "predictor": catalogue["predictor"], "seconds": elapsed,
                                "arm_cpu_seconds": seconds, "tasks": {}}
        for task, t in tasks.items():
            full = [a for a in table_arms if seeds_of[a.tier] == args.seeds]
            summary = summarise(t, _only(runs[task], full), _only(costs[task], full), args.budget)
            for tier in (2, 3):  # paired tests need the same seeds: fewer-seed arms are compared on theirs
                names = [a.name for a in table_arms if a.tier == tier and seeds_of[tier] < args.seeds]
                if names:
                    n = seeds_of[tier]
                    enough = [a for a in table_arms if seeds_of[a.tier] >= n]
                    fewer = summarise(t, _trim(_only(runs[task], enough), n), _trim(_only(costs[task], enough), n),
                                      args.budget)
                    for name in names:
                        summary["arms"][name] = fewer["arms"][name] | {"seeds": n}
            info["tasks"][task] = {k: v for k, v in t.items() if k != "feasible"} | {"summary": summary}
            print(f"{table_name} · {task}: {t['n']} feasible, best {100 * t['best']:.2f}; "
                  + ", ".join(f"{arm} {_fmt_evals(a['to_top01'], args.budget)}"
                              for arm, a in summary["arms"].items()), flush=True)
        info |= {"command": result["command"], "seeds": args.seeds, "budget": args.budget,
                 "tier_seeds": seeds_of, "processes": args.processes,
                 "machine": result["machine"], "catalogue_seconds": catalogue["seconds"]}
        table_dir.mkdir(parents=True, exist_ok=True)
        (table_dir / f"{table_name}.json").write_text(json.dumps(info, indent=1, default=float) + "\n")
    # the report covers every table run so far (each table's results are kept in its own file)
    for path in sorted(table_dir.glob("*.json")):
        if path.stem in TABLES:
            result["tables"][path.stem] = json.loads(path.read_text())
    result["tables"] = {t: result["tables"][t] for t in TABLES if t in result["tables"]}
    result["search_seconds"] = sum(t["seconds"] for t in result["tables"].values())
    result["plots"] = plot(result, table_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    write_report(result, args.out.with_suffix(".md"))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def _only(runs: dict[str, dict[int, Any]], arms: list[Arm]) -> dict[str, dict[int, Any]]:
    """The runs of ``arms``."""
    names = {a.name for a in arms}
    return {arm: v for arm, v in runs.items() if arm in names}


def _trim(runs: dict[str, dict[int, Any]], n: int) -> dict[str, dict[int, Any]]:
    """Every arm on its first ``n`` seeds (so that the optuna arms are compared on the seeds they ran)."""
    return {arm: {s: v for s, v in by_seed.items() if s < n} for arm, by_seed in runs.items()}


if __name__ == "__main__":
    main()
