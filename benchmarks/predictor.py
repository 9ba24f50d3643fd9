"""The ONNX-Net predictor's report: accuracy protocols against baselines, and inference speed of the default.

    python benchmarks/predictor_corpus.py                  # encode the labelled corpora (once)
    python benchmarks/train_default_predictor.py           # the shipped default (once)
    python benchmarks/predictor.py                         # -> benchmarks/results/predictor.{md,json}
    python benchmarks/predictor.py --speed-only            # only the speed section

Accuracy: ``nas.bench.predictor_eval.evaluate`` (random split, few-shot curves with a predictor pretrained on the
other spaces only, leave-one-space-out zero-shot; baselines params, FLOPs, GRAF-style forest, one-hot forest on
NAS-Bench-Macro) for the default (hash) encoder, and the NAS-Bench-Macro few-shot row for the MiniLM encoder.
Speed: cold load of ``OnnxNetPredictor.default()`` in a fresh process, and architectures/s of ``predict`` on ONNX
files (bytes, weights included) after warm-up, in-process and with the 2-process encoding pool.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CORPORA = RESULTS / "predictor"


def speed(n: int = 600) -> dict:
    import torch

    from nas.bench.labelled import load_benchmark
    from nas.candidate import build_candidate
    from predictors import OnnxNetPredictor
    from search_spaces import get_space

    torch.set_num_threads(1)
    code = ("import time; t = time.perf_counter(); from predictors import OnnxNetPredictor; "
            "p = OnnxNetPredictor.default(); print(time.perf_counter() - t)")
    cold = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    space = get_space("nb-macro", (3, 32, 32))
    rng = random.Random(0)
    archs = ["".join(rng.choice("012") for _ in range(8)) for _ in range(n)]
    sets = {
        "nb-macro (3x32x32, ~1.5 MB each)": [build_candidate(space, space.from_arch(a), 10, check=False)
                                             .onnx_model.SerializeToString() for a in archs],
        "einspace (digits)": [r.onnx for r in load_benchmark(RESULTS / "bench_einspace_digits.jsonl.gz").rows],
    }
    out: dict = {"cold_load_seconds": min(cold), "cold_load_runs": cold, "throughput": {}}
    for label, models in sets.items():
        for workers in (1, 0):
            predictor = OnnxNetPredictor.default()
            predictor.config.encode_workers = workers
            predictor.predict(models[:64])  # warm-up: pool start, caches of the first lines
            t = time.perf_counter()
            predictor.predict(models)
            seconds = time.perf_counter() - t
            key = f"{label}, {'1 process' if workers == 1 else 'encoding pool'}"
            out["throughput"][key] = {"models": len(models), "seconds": seconds, "archs_per_s": len(models) / seconds}
            print(f"{key}: {len(models) / seconds:.0f} architectures/s", flush=True)
            predictor.close()
    return out


def accuracy(seeds: int) -> tuple[list, list, list]:
    import torch

    from nas.bench.predictor_corpus import load_corpus
    from nas.bench.predictor_eval import evaluate
    from predictors import OnnxNetPredictor

    torch.set_num_threads(1)
    corpora = [load_corpus(p) for p in sorted(CORPORA.glob("*.jsonl.gz"))]
    scores = evaluate(corpora, lambda: OnnxNetPredictor(), seeds=seeds)
    minilm = evaluate(corpora, lambda: OnnxNetPredictor(encoder={"name": "minilm"}), seeds=seeds, sizes=(100,),
                      protocols=("few-shot",), few_shot_spaces=("nb-macro",))
    minilm = [s for s in minilm if s.method.startswith("onnx-net")]
    return corpora, scores, minilm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    json_path, md_path = RESULTS / "predictor.json", RESULTS / "predictor.md"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    report["machine"] = f"{platform.machine()}, {platform.python_version()}, 2-core sandbox"
    if not args.speed_only:
        from nas.cli.predictor import markdown

        corpora, scores, minilm = accuracy(args.seeds)
        report["corpora"] = {c.name: len(c.rows) for c in corpora}
        report["scores"] = [asdict(s) for s in scores]
        report["minilm"] = [asdict(s) for s in minilm]
        report["accuracy_md"] = markdown(scores, corpora, f"python benchmarks/predictor.py --seeds {args.seeds}",
                                         "hash")
        report["minilm_md"] = "\n".join(
            ["## MiniLM encoder, NAS-Bench-Macro few-shot (100 labels)", "",
             "| method | Kendall tau | Spearman rho | seeds |", "|---|---:|---:|---:|"]
            + [f"| {s.method} | {s.kendall_tau:.3f} ± {s.tau_std:.3f} | {s.spearman:.3f} | {s.seeds} |"
               for s in minilm]) + "\n"
    report["speed"] = speed()
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    sp = report["speed"]
    lines = [report.get("accuracy_md", ""), report.get("minilm_md", ""), "## Inference speed of the default predictor",
             "", "Command: `python benchmarks/predictor.py --speed-only` (machine: " + report["machine"] + ").", "",
             f"Cold load (fresh process: import + `OnnxNetPredictor.default()`): **{sp['cold_load_seconds']:.2f} s** "
             f"(best of 3).", "", "| models | architectures / s (after warm-up) |", "|---|---:|"]
    lines += [f"| {k} | {v['archs_per_s']:.0f} |" for k, v in sp["throughput"].items()]
    md_path.write_text("\n".join(lines) + "\n")
    print(f"wrote {md_path} and {json_path}")


if __name__ == "__main__":
    main()
