"""The ONNX-Net predictor's report: accuracy protocols against baselines, and inference speed of the default.

    python benchmarks/predictor_corpus.py                  # encode the labelled corpora (once)
    python benchmarks/train_default_predictor.py           # the shipped default and the priors (once; see
                                                           # benchmarks/results/priors/README.md)
    python benchmarks/predictor.py                         # -> benchmarks/results/predictor.{md,json}
    python benchmarks/predictor.py --speed-only            # only the speed section
    python benchmarks/predictor.py --accuracy-only --seeds 3

Accuracy (``nas.bench.predictor_eval.evaluate``): per corpus, zero-shot (leave-one-space-out: the committed
prior that never saw the corpus's space, ``benchmarks/results/priors/without-*``, on every row) and, on the real
tables (NAS-Bench-Macro, NATS-SSS CIFAR-10), few-shot curves (10/50/100/500 labels: that prior fine-tuned, and
the same predictor from scratch) beside params, FLOPs, the GRAF-lite forest and the one-hot forest. A corpus
whose space has no prior is pretrained here on the other spaces. Speed: cold load of ``OnnxNetPredictor.default()``
in a fresh process, and architectures/s of ``predict`` on ONNX bytes *with weights* of every built-in space after
warm-up, in one process and with the encoding pool.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CORPORA = RESULTS / "predictor"
PRIORS = RESULTS / "priors"
#: the prior that never saw each space (leave-one-space-out)
SPACE_PRIORS = {"nb-macro": "without-nb-macro-cifar10", "nats-sss": "without-nats-sss",
                "einspace": "without-einspace-digits", "einspace-1d": "without-einspace1d-mnist1d",
                "nb201": "without-nb201-digits"}
SPEED_SPACES = {"einspace": (3, 32, 32), "einspace-1d": (1, 40), "nb201": (3, 32, 32), "nb-macro": (3, 32, 32),
                "nats-sss": (3, 32, 32), "hnb201": (3, 32, 32), "hnb201-shared": (3, 32, 32),
                "hnb201-einspace": (3, 32, 32), "seq-templates": (1, 40)}


#: What the accuracy tables are made of (appended to the report).
NOTES = """
The predictor here (priors and scratch alike) is `PredictorConfig(size_prior=True, width_features=True)`: each
head's score plus a non-negative learnt weighting of log params, log FLOPs, depth and the narrowest hidden width,
each z-scored within the set being ranked (training: within each label set), and the hidden-width statistics
(min/mean/max log2 width of the weighted layers, read from the encoded text) among the global features. Zero-shot
scores therefore rank each table's rows among themselves (one `predict` call per table). `graf-lite` is the
forest on `predictors.onnx_net.features.graph_features` (global features plus four path statistics), not GRAF's
operation-specific path-length and degree families.
"""


REAL_TABLES = ("nb-macro/cifar10/nas-bench-macro", "nats-sss/cifar10/nats-bench-sss")


def goals(scores: list) -> str:
    """The issue's accuracy goals, checked on the scores (Kendall tau): zero-shot at least the better of params
    and FLOPs on every real table; few-shot 100 at least 0.80 and 0.05 above the one-hot forest."""
    tau = {(s.protocol, s.space, s.method, s.n_train): s.kendall_tau for s in scores}
    lines = ["", "## Goals (Kendall tau)", "", "| table | zero-shot | better of params/FLOPs | reached | "
             "few-shot 100 (fine-tuned) | one-hot forest 100 | >= 0.80 and +0.05 |", "|---|---:|---:|---|---:|---:|---|"]
    for table in REAL_TABLES:
        zero = tau.get(("zero-shot", table, "onnx-net", 0), float("nan"))
        size = max(tau.get(("zero-shot", table, m, 0), float("nan")) for m in ("params", "flops"))
        few = tau.get(("few-shot", table, "onnx-net (pretrained, fine-tuned)", 100), float("nan"))
        forest = tau.get(("few-shot", table, "onehot-rf", 100), float("nan"))
        lines.append(f"| {table} | {zero:.3f} | {size:.3f} | {'yes' if zero >= size else 'no'} | {few:.3f} | "
                     f"{forest:.3f} | {'yes' if few >= 0.80 and few >= forest + 0.05 else 'no'} |")
    return "\n".join(lines) + "\n"


def speed(n: int) -> dict:
    import torch

    from nas.candidate import build_candidate
    from predictors import OnnxNetPredictor
    from search_spaces import get_space

    torch.set_num_threads(1)
    code = ("import time; t = time.perf_counter(); from predictors import OnnxNetPredictor; "
            "p = OnnxNetPredictor.default(); print(time.perf_counter() - t)")
    cold = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    # where the cold load goes: ``import predictors``, then reading the default; and whether torch was imported
    # (scoring with a hash-encoder predictor needs no torch: its heads are numpy arrays once loaded)
    parts_code = ("import json, sys, time; t0 = time.perf_counter(); "
                  "from predictors import OnnxNetPredictor; t1 = time.perf_counter(); OnnxNetPredictor.default(); "
                  "t2 = time.perf_counter(); print(json.dumps({'import predictors': t1 - t0, "
                  "'OnnxNetPredictor.default()': t2 - t1, 'torch imported': float('torch' in sys.modules)}))")
    parts = [json.loads(subprocess.run([sys.executable, "-c", parts_code], capture_output=True, text=True,
                                       check=True).stdout) for _ in range(3)]
    import os

    out: dict = {"cold_load_seconds": min(cold), "cold_load_runs": cold, "models_per_space": n, "throughput": {},
                 "cold_load_parts": {k: min(p[k] for p in parts) for k in parts[0]},
                 "load_average_at_start": os.getloadavg()[0]}
    for name, shape in SPEED_SPACES.items():
        space = get_space(name, shape)
        models = []
        for seed in range(n):
            with torch.no_grad():
                models.append(build_candidate(space, space.sample(seed=seed), 10, check=False)
                              .onnx_model.SerializeToString())
        size = sum(map(len, models)) / len(models) / 1e6
        row = {"mean_file_mb": size}
        for workers in (1, 0):
            predictor = OnnxNetPredictor.default()
            predictor.config.encode_workers = workers
            predictor.predict(models[: min(64, n)])  # warm-up: pool start, memo tables, embedding cache
            t = time.perf_counter()
            predictor.predict(models)
            seconds = time.perf_counter() - t
            row["1 process" if workers == 1 else "encoding pool"] = len(models) / seconds
            predictor.close()
        out["throughput"][name] = row
        print(f"{name}: {row}", flush=True)
    return out


#: the training recipe of the default and the priors (benchmarks/train_default_predictor.py), used for every fit here
RECIPE = {"ensemble": 3, "patience": 20, "min_epochs": 40, "encode_workers": 1, "size_prior": True,
          "width_features": True}


def accuracy(seeds: int, spaces: list[str] | None = None) -> tuple[list, list, dict]:
    import torch

    from nas.bench.predictor_corpus import load_corpus
    from nas.bench.predictor_eval import evaluate
    from predictors import OnnxNetPredictor

    torch.set_num_threads(1)
    from predictors.onnx_net.files import describe

    corpora = [load_corpus(p) for p in sorted(CORPORA.glob("*.jsonl.gz"))]
    priors, used = {}, {}
    for space in sorted({c.space for c in corpora}):
        path = PRIORS / SPACE_PRIORS.get(space, "-")
        if path.with_suffix(".json").exists() and describe(path)["version"] >= 2:   # v1: the old encoding
            priors[space] = OnnxNetPredictor.load(path)
            used[space] = str(path.relative_to(ROOT.parent))
            seen = set(describe(path)["trained_on"])
            assert not any(g.startswith(space + "/") for g in seen), (space, seen)  # it never saw the space
    corpora = [c for c in corpora if c.space in priors and (not spaces or c.space in spaces)]  # no prior: skipped
    scores = evaluate(corpora, lambda: OnnxNetPredictor(**RECIPE), seeds=seeds,
                      protocols=("few-shot", "zero-shot"),
                      few_shot_spaces=("nb-macro/cifar10", "nats-sss/cifar10"), pretrained=priors)
    return corpora, scores, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--speed-models", type=int, default=64, help="ONNX files per space for the speed table")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--accuracy-only", action="store_true")
    parser.add_argument("--space", action="append", default=None,
                        help="accuracy of these spaces only, written to benchmarks/results/predictor_parts/SPACE.json "
                        "(run several at once; then --merge)")
    parser.add_argument("--merge", action="store_true", help="the report from the parts")
    args = parser.parse_args()
    parts = RESULTS / "predictor_parts"
    if args.space:
        from dataclasses import asdict as as_dict

        corpora, scores, used = accuracy(args.seeds, args.space)
        parts.mkdir(exist_ok=True)
        (parts / f"{'+'.join(args.space)}.json").write_text(json.dumps(
            {"seeds": args.seeds, "corpora": {c.group: len(c.rows) for c in corpora}, "priors": used,
             "scores": [as_dict(s) for s in scores]}, indent=1) + "\n")
        return
    json_path, md_path = RESULTS / "predictor.json", RESULTS / "predictor.md"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    report["machine"] = f"{platform.machine()}, {platform.python_version()}, 2-core shared sandbox"
    if args.merge:
        from types import SimpleNamespace

        from nas.bench.predictor_eval import Score
        from nas.cli.predictor import markdown

        merged = [json.loads(p.read_text()) for p in sorted(parts.glob("*.json"))]
        scores = [Score(**s) for part in merged for s in part["scores"]]
        counts = {g: n for part in merged for g, n in part["corpora"].items()}
        used = {k: v for part in merged for k, v in part["priors"].items()}
        corpora = [SimpleNamespace(group=g, rows=[None] * n) for g, n in counts.items()]
        report["corpora"], report["priors"], report["scores"] = counts, used, [asdict(s) for s in scores]
        seeds = sorted({part["seeds"] for part in merged})
        report["accuracy_md"] = markdown(scores, corpora, "python benchmarks/predictor.py --space S --seeds "
                                         f"{'/'.join(map(str, seeds))} (per space), then --merge", "hash") + \
            "\nZero-shot / few-shot priors (never saw the space): " + \
            ", ".join(f"{k}: `{v}`" for k, v in used.items()) + "\n" + NOTES + goals(scores)
        args.speed_only = True   # the accuracy part is done; keep or measure speed below
    if not args.speed_only:
        from nas.cli.predictor import markdown

        corpora, scores, used = accuracy(args.seeds)
        report["corpora"] = {c.group: len(c.rows) for c in corpora}
        report["priors"] = used
        report["scores"] = [asdict(s) for s in scores]
        report["accuracy_md"] = (markdown(scores, corpora, f"python benchmarks/predictor.py --accuracy-only "
                                          f"--seeds {args.seeds}", "hash") + "\nZero-shot / few-shot priors (never "
                                 "saw the space): " + ", ".join(f"{k}: `{v}`" for k, v in used.items()) + "\n")
        report.pop("minilm", None)
        report.pop("minilm_md", None)
    if not args.accuracy_only:
        report["speed"] = speed(args.speed_models)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    lines = [report.get("accuracy_md", "")]
    sp = report.get("speed")
    if sp and "models_per_space" in sp:
        lines += ["## Inference speed of the default predictor", "",
                  f"Command: `python benchmarks/predictor.py --speed-only` (machine: {report['machine']}; "
                  f"{sp['models_per_space']} ONNX files with weights per space, sampled with seeds 0..).", "",
                  f"Cold load (fresh process: import + `OnnxNetPredictor.default()`): **{sp['cold_load_seconds']:.2f} s**"
                  " (best of 3)" + ("; of which " + ", ".join(f"{k} {v:.2f} s" for k, v in sp["cold_load_parts"].items()
                                                              if k != "torch imported")
                                    + " (best of 3 each)" if "cold_load_parts" in sp else "") + "."
                  + (f" torch imported by the load: {'yes' if sp['cold_load_parts']['torch imported'] else 'no'}."
                     if "torch imported" in sp.get("cold_load_parts", {}) else ""),
                  "", "Load average of the shared machine while measuring: "
                  f"{sp.get('load_average_at_start', sp.get('load_average_observed', '?'))} (2 cores): absolute rates "
                  "scale with it; compare spaces with each other.", "", "| space | mean file (MB) | architectures / s, 1 process | with the encoding pool |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['mean_file_mb']:.2f} | {v['1 process']:.0f} | {v['encoding pool']:.0f} |"
                  for k, v in sp["throughput"].items()]
    md_path.write_text("\n".join(lines) + "\n")
    print(f"wrote {md_path} and {json_path}")


if __name__ == "__main__":
    main()
