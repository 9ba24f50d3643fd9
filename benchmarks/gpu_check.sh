#!/usr/bin/env bash
# GPU readiness check (issue 14), for a machine with an NVIDIA GPU, about 2 minutes:
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# Needs the project installed with a CUDA build of torch and the [gpu] extra (onnxruntime-gpu instead of
# onnxruntime: never both), e.g. `pip install -e '.[gpu]'`. Runs a short search whose trials ask for a quarter of a
# GPU each (four share the GPU), with the latency objective, then prints what the trials ran on: the device, the AMP
# dtype (bf16 autocast where the GPU has it, else fp16 with a GradScaler), epoch seconds, the ONNX Runtime provider of
# the latency objective, and any trial flagged as "asked for a GPU but trained on the CPU". Writes OUT_DIR/gpu_check.json.
# GPUS, BUDGET, EPOCHS override the GPU share per trial (0.25), trials (12) and epochs (6); GPUS=0 checks the
# script itself on a CPU-only machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-benchmarks/results}}"
mkdir -p "$OUT"
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
DB="sqlite:///$(realpath "$OUT")/gpu_check.db"
rm -f "$OUT/gpu_check.db"
python - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}",
      f"({torch.cuda.get_device_name(0)}, bf16: {torch.cuda.is_bf16_supported()})" if torch.cuda.is_available() else "")
PY
timeout 600 python -m nas.cli.app search run --name gpu --db "$DB" --budget "${BUDGET:-12}" --batch 4 \
    --epochs "${EPOCHS:-6}" --gpus-per-trial "${GPUS:-0.25}" --cpus-per-trial 1 --objectives val_acc,latency
DB="$DB" OUT="$OUT" python - <<'PY'
import json, os, statistics
from nas.search.latency import latency_providers
from nas.store import Store

with Store(os.environ["DB"]) as store:
    trials = store.trials_of("gpu")
    rows = [{"trial": t.id, "status": t.status, "device": t.resources.get("device"), "amp": t.resources.get("amp"),
             "gpu": t.resources.get("gpu"), "gpu_fallback": t.gpu_fallback, "epochs": len(t.epochs),
             "median_epoch_s": statistics.median([e["seconds"] for e in t.epochs]) if t.epochs else None,
             "val_acc": t.val_acc} for t in trials]
report = {"latency_providers": latency_providers(), "trials": rows,
          "on_cuda": sum(str(r["device"]).startswith("cuda") for r in rows),
          "gpu_fallback": sum(r["gpu_fallback"] for r in rows)}
print(f"{'trial':>5} {'status':>8} {'device':>8} {'amp':>9} {'epochs':>6} {'epoch s':>8} {'val acc':>8}")
for r in rows:
    sec = f"{r['median_epoch_s']:.3f}" if r["median_epoch_s"] is not None else "-"
    acc = f"{r['val_acc']:.4f}" if r["val_acc"] is not None else "-"
    print(f"{r['trial']:>5} {r['status']:>8} {str(r['device']):>8} {str(r['amp']):>9} {r['epochs']:>6} {sec:>8} {acc:>8}")
print(f"trials on CUDA: {report['on_cuda']}/{len(rows)}; flagged GPU-asked-but-CPU: {report['gpu_fallback']}; "
      f"latency providers: {', '.join(report['latency_providers'])}")
with open(os.path.join(os.environ["OUT"], "gpu_check.json"), "w") as f:
    json.dump(report, f, indent=2)
PY
