"""``OnnxNetPredictor`` files and inputs under hostile conditions (issue 13 item 2, issue 17 item 6): robust
standardisation for zero-shot targets, tampered or truncated predictor files, and bounded fuzzing of
``OnnxNetPredictor.load`` and of the ONNX text encoder (only documented errors, never a hang)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from predictors import OnnxNetPredictor, OnnxTextError, PredictorError
from predictors.onnx_net.features import global_feature_names
from predictors.onnx_net.predictor import Z_CLIP, fit_standardisation, standardise
from predictors.onnx_text import OnnxTextEncoder, encode_lines

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def einspace_models() -> tuple[list[bytes], np.ndarray]:
    from nas.bench.labelled import load_benchmark

    rows = [r for r in load_benchmark(RESULTS / "bench_einspace_digits.jsonl.gz").trained()][:60]
    return [r.onnx for r in rows], np.asarray([r.val_acc for r in rows])


@pytest.fixture(scope="module")
def small(einspace_models) -> OnnxNetPredictor:
    models, acc = einspace_models
    return OnnxNetPredictor(ensemble=2, max_epochs=5, min_epochs=5, encode_workers=1).fit(models[:40], acc[:40])


@pytest.fixture()
def saved(small, tmp_path) -> Path:
    small.save(tmp_path / "p")
    return tmp_path / "p"


@pytest.fixture(scope="module")
def pristine(small, tmp_path_factory) -> tuple[bytes, bytes]:
    """The saved files' bytes, which each fuzz example writes to a fresh folder (no state between examples)."""
    json_path, weights_path = small.save(tmp_path_factory.mktemp("pristine") / "p")
    return json_path.read_bytes(), weights_path.read_bytes()


@contextlib.contextmanager
def _fresh_copy(pristine: tuple[bytes, bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz-predictor-") as folder:
        base = Path(folder) / "p"
        base.with_suffix(".json").write_bytes(pristine[0])
        base.with_suffix(".safetensors").write_bytes(pristine[1])
        yield base


# --- robust standardisation (issue 13 item 2) ----------------------------------------------------------------------


def test_constant_training_columns_are_dropped_not_divided_by_a_tiny_number() -> None:
    x = np.array([[1.0, 5.0, 0.0], [2.0, 5.0, 0.0], [3.0, 5.0 + 1e-12, 0.0]])
    mean, std = fit_standardisation(x)
    assert std[0] > 0 and std[1] == 0 and std[2] == 0
    target = np.array([[2.0, 9.0, 4.0], [40.0, 1.0, -3.0]])
    z = standardise(target, mean, std)
    assert np.all(z[:, 1:] == 0) and np.all(np.isfinite(z)) and np.abs(z).max() <= Z_CLIP
    assert z[0, 0] == pytest.approx(0.0) and z[1, 0] == Z_CLIP   # clipped, not 46 standard deviations


def test_a_target_space_whose_features_were_constant_in_training_stays_in_range(einspace_models) -> None:
    """nb201's AveragePool never occurs in these einspace networks: the old ``std + 1e-6`` read it as ~1e6."""
    from nas.bench.labelled import load_benchmark

    models, acc = einspace_models
    predictor = OnnxNetPredictor(ensemble=1, max_epochs=5, min_epochs=5, encode_workers=1)
    graphs = predictor.encode(models)
    column = global_feature_names().index("n_AveragePool")
    offset = 2 * predictor.encoder.dim
    keep = [i for i, g in enumerate(graphs) if g.global_features[column] == 0]
    assert len(keep) >= 20
    predictor.fit([graphs[i] for i in keep], acc[keep])
    target = [r.onnx for r in load_benchmark(RESULTS / "bench_nb201_digits.jsonl.gz").trained()[:30]]
    target_graphs = predictor.encode(target)
    raw = predictor.features(target_graphs)
    assert np.all(raw[:, offset + column] > 0)                                   # it varies in the target...
    naive = (raw - predictor.mean) / (raw[: len(keep)].std(0) * 0 + np.where(predictor.std > 0, predictor.std, 0) + 1e-6)
    assert np.abs(naive).max() > 1e5                                             # ...the old rule blew it up
    z = standardise(raw, predictor.mean, predictor.std)
    assert predictor.std[offset + column] == 0 and np.all(z[:, offset + column] == 0)
    assert np.abs(z).max() <= Z_CLIP
    scores = predictor.predict(target_graphs)
    assert np.all(np.isfinite(scores)) and np.ptp(scores) > 0


# --- tampered files (issue 17 item 6) ------------------------------------------------------------------------------


def _tamper(base: Path, change) -> None:  # noqa: ANN001
    meta = json.loads(base.with_suffix(".json").read_text())
    change(meta)
    base.with_suffix(".json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["config"].__setitem__("hidden", 1e9), "'hidden' must be int"),
    (lambda m: m["config"].__setitem__("hidden", 10 ** 9), r"'hidden' must be in \[1, 16384\]"),
    (lambda m: m["config"].__setitem__("ensemble", "5"), "'ensemble' must be int"),
    (lambda m: m["config"].__setitem__("dropout", None), "'dropout' must be float"),
    (lambda m: m["config"].__setitem__("bogus", 1), "config key 'bogus' is unknown"),
    (lambda m: m["config"].__setitem__("encoder", {"name": "hash", "dim": 10 ** 9}), "'dim' must be an int"),
    (lambda m: m["config"].__setitem__("encoder", "hash"), "'encoder' must be a dict"),
    (lambda m: m.pop("config"), "key 'config' is missing"),
    (lambda m: m.pop("input_width"), "key 'input_width' is missing"),
    (lambda m: m.__setitem__("input_width", "178"), "key 'input_width' must be int"),
    (lambda m: m.__setitem__("input_width", 10 ** 12), "key 'input_width' must be in"),
    (lambda m: m.__setitem__("input_width", m["input_width"] + 1), "tensor 'norm.mean' has shape"),
    (lambda m: m.__setitem__("extra_names", "proxy"), "key 'extra_names' must be a list"),
    (lambda m: m.__setitem__("version", "2"), "key 'version'"),
    (lambda m: m.__setitem__("history", [{"groups": {"a": "many"}}]), "key 'history'"),
    (lambda m: m["config"].__setitem__("layers", 2), r"tensor 'head.0.3.weight' has shape \[1, 128\], the description says \[128, 128\]"),
])
def test_tampered_description_is_a_predictor_error_naming_the_key(saved, change, message) -> None:
    _tamper(saved, change)
    with pytest.raises(PredictorError, match=message):
        OnnxNetPredictor.load(saved)


def _rewrite_tensors(base: Path, change) -> None:  # noqa: ANN001
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(base.with_suffix(".safetensors")))
    change(tensors)
    save_file(tensors, str(base.with_suffix(".safetensors")))


def test_zero_std_in_the_weights_drops_the_feature_instead_of_giving_nan(saved, einspace_models) -> None:
    models = einspace_models[0][40:50]
    before = OnnxNetPredictor.load(saved).predict(models)
    _rewrite_tensors(saved, lambda t: t["norm.std"].zero_())
    scores = OnnxNetPredictor.load(saved).predict(models)
    assert np.all(np.isfinite(scores)) and not np.allclose(scores, before)
    assert np.allclose(scores, scores[0])   # every input dropped: one constant score, said by the file itself


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t["norm.std"].__setitem__(0, -1.0), "negative standard deviations"),
    (lambda t: t["norm.mean"].__setitem__(3, float("nan")), "'norm.mean' holds non-finite"),
    (lambda t: t["head.1.0.weight"].__setitem__((0, 0), float("inf")), "'head.1.0.weight' holds non-finite"),
    (lambda t: t.pop("head.1.0.bias"), "'head.1.0.bias' is missing"),
    (lambda t: t.__setitem__("head.7.0.bias", t["head.0.0.bias"].clone()), "'head.7.0.bias' is not part"),
])
def test_tampered_tensors_are_a_predictor_error_naming_the_tensor(saved, change, message) -> None:
    _rewrite_tensors(saved, change)
    with pytest.raises(PredictorError, match=message):
        OnnxNetPredictor.load(saved)


def test_save_load_round_trip_is_identical(small, saved, einspace_models) -> None:
    loaded = OnnxNetPredictor.load(saved)
    assert np.array_equal(loaded.predict(einspace_models[0][40:]), small.predict(einspace_models[0][40:]))
    meta = json.loads(saved.with_suffix(".json").read_text())
    assert meta["version"] == 2 and meta["trained_on"] == {"all": 40}
    assert len(meta["feature_names"]) == meta["input_width"]


# --- bounded fuzzing (issue 17: only documented errors, no hang over 5 s) ------------------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 12, 10 ** 12) | st.floats(allow_nan=False)
                           | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
FUZZ = settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@FUZZ
@given(data=st.data())
def test_fuzzed_descriptions_load_or_raise_predictor_error(pristine, data) -> None:
    with _fresh_copy(pristine) as saved:
        _fuzz_description(saved, data)


def _fuzz_description(saved: Path, data: st.DataObject) -> None:
    meta = json.loads(saved.with_suffix(".json").read_text())
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["top", "config", "encoder"]))
        config = meta.get("config")
        encoder = config.get("encoder") if isinstance(config, dict) else None
        target = meta if where == "top" else config if where == "config" else encoder
        if not isinstance(target, dict) or not target:
            continue
        key = data.draw(st.sampled_from(sorted(target)))
        if data.draw(st.booleans()):
            target[key] = data.draw(JSON_VALUES)
        else:
            del target[key]
    saved.with_suffix(".json").write_text(json.dumps(meta))
    try:
        predictor = OnnxNetPredictor.load(saved)
    except PredictorError:
        return
    assert predictor.is_trained


@FUZZ
@given(cuts=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=6),
       truncate=st.booleans())
def test_fuzzed_weight_files_load_or_raise_predictor_error(pristine, cuts, truncate) -> None:
    with _fresh_copy(pristine) as saved:
        path = saved.with_suffix(".safetensors")
        data = bytearray(path.read_bytes())
        for where, value in cuts:
            data[min(int(where * len(data)), len(data) - 1)] = value
        if truncate:
            data = data[: int(cuts[0][0] * len(data))]
        path.write_bytes(bytes(data))
        try:
            OnnxNetPredictor.load(saved)
        except PredictorError:
            pass


def _valid_model_bytes() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    zero = onnx.numpy_helper.from_array(np.zeros((1,), np.float32), "zero")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Mul", ["r", "zero"], ["m"]), helper.make_node("Add", ["r", "m"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [y], [w, zero])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzzed_bytes_encode_or_raise_onnx_text_error(blob) -> None:
    try:
        encode_lines(blob)
    except OnnxTextError:
        pass


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_models_encode_or_raise_onnx_text_error(flips) -> None:
    data = bytearray(_valid_model_bytes())
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    encoder = OnnxTextEncoder()
    for variant in ("chain", "relative", "compact"):
        try:
            encoder.encode(bytes(data), variant=variant)
        except OnnxTextError:
            pass


OPS = ["Relu", "Add", "Concat", "Conv", "Mul", "Split", "Constant", "Identity", "MatMul", "custom.Foo"]


@FUZZ
@given(st.data())
def test_random_graphs_encode_or_raise_onnx_text_error(data) -> None:
    """Random wiring: cycles, tensors defined twice or never, missing inputs, odd attributes and constants."""
    names = ["x", "w", "zero", "", "t0", "t1", "t2", "t3", "y"]
    nodes = []
    for k in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(OPS))
        domain, op_type = op.split(".") if "." in op else ("", op)
        ins = data.draw(st.lists(st.sampled_from(names), max_size=3))
        outs = data.draw(st.lists(st.sampled_from(names[4:]), min_size=1, max_size=2))
        attrs = {}
        if data.draw(st.booleans()):
            attrs["axis"] = data.draw(st.integers(-3, 3))
        if op_type == "Constant" and data.draw(st.booleans()):
            attrs["value"] = onnx.numpy_helper.from_array(np.asarray(data.draw(st.lists(st.integers(-5, 5), max_size=10)),
                                                                    np.int64))
        nodes.append(helper.make_node(op_type, ins, outs, domain=domain, name=f"n{k}", **attrs))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, data.draw(st.sampled_from([["N", 3, 8, 8], [2, 3], None])))
    out = helper.make_tensor_value_info(data.draw(st.sampled_from(names[4:])), TensorProto.FLOAT, None)
    inits = [onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w"),
             onnx.numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [out], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    try:
        lines = OnnxTextEncoder().encode_lines(model, variant=data.draw(st.sampled_from(["chain", "relative", "compact"])))
    except OnnxTextError:
        return
    assert lines and all(isinstance(line, str) for line in lines)


def test_the_none_edge_reads_as_a_zero_constant() -> None:
    """NAS-Bench-201's ``none`` exports as ``Mul(x, 0)``: the zero is written by value, with or without weights."""
    from nas.candidate import build_candidate
    from search_spaces import get_space

    assert "Mul(V1, Const[0])" in "\n".join(encode_lines(_valid_model_bytes()))
    space = get_space("nb201", (3, 32, 32))
    arch = space.from_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|")
    texts = ["\n".join(encode_lines(build_candidate(space, arch, 10, check=False, weights=w).onnx_model))
             for w in (True, False)]
    assert texts[0] == texts[1]
    assert "Mul(V1, Const[0])" in texts[0]
    assert "Param[1]" not in texts[0] and "Param[1,1,1,1]" not in texts[0]
