"""Predictor files: ``<path>.json`` (description) + ``<path>.safetensors`` (tensors), written atomically, read
with every key and tensor checked before anything is allocated.

``load`` of a tampered or truncated file raises :class:`PredictorError` naming the file and the key or tensor
at fault: a missing or mistyped key, a size outside :data:`~predictors.onnx_net.predictor.PredictorConfig`'s
bounds (so ``hidden: 1e9`` cannot ask for a 712 GB head), a tensor whose shape does not follow from the
description, a non-finite value, a negative standard deviation. A standard deviation of 0 is valid: it marks a
feature that was constant in the training data and is dropped (see
:func:`~predictors.onnx_net.predictor.standardise`).

A predictor with ``config.size_prior`` also has one tensor ``size.K`` per head (the size term's raw weights).

JSON keys (version 2): ``format``, ``version``, ``config`` (:class:`PredictorConfig` as a dict), ``encoder``
(its ``config()``), ``extra_names``, ``input_width``, ``feature_names``, ``trained_on`` (every ranking group the
predictor learned from, with its rows, over all its fits), ``provenance`` (what its trainer recorded: corpus
files and their sha256), ``history`` (one :class:`TrainingSummary` per fit). Version 1 files (no
``trained_on``, ``feature_names`` or ``provenance``) are still read.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from predictors.onnx_net.heads import ArrayHead, linear_names

if TYPE_CHECKING:
    from predictors.onnx_net.predictor import OnnxNetPredictor

FILE_FORMAT = "onnx-net-predictor"
FILE_VERSION = 2
MAX_INPUT_WIDTH = 1 << 20


def base_path(path: str | os.PathLike[str]) -> Path:
    """``path`` without a ``.json`` / ``.safetensors`` suffix."""
    base = Path(path)
    return base.with_suffix("") if base.suffix in (".json", ".safetensors") else base


def trained_on(history: list[dict[str, Any]]) -> dict[str, int]:
    """Rows per ranking group over every fit of ``history`` (a group seen in two fits counts both)."""
    out: dict[str, int] = {}
    for fit in history:
        for group, rows in (fit.get("groups") or {}).items():
            out[str(group)] = out.get(str(group), 0) + int(rows)
    return dict(sorted(out.items()))


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_predictor(predictor: OnnxNetPredictor, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``predictor`` (see :meth:`OnnxNetPredictor.save`)."""
    from safetensors.numpy import save_file

    from predictors.onnx_net.heads import as_array, as_array_head
    from predictors.onnx_net.predictor import PredictorError

    if not predictor.is_trained:
        raise PredictorError("nothing to save: the predictor is untrained")
    base = base_path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"norm.mean": np.asarray(predictor.mean, dtype=np.float64),
               "norm.std": np.asarray(predictor.std, dtype=np.float64)}
    for k, head in enumerate(predictor.heads):
        for name, value in as_array_head(head).state().items():
            tensors[f"head.{k}.{name}"] = value
    for k, raw in enumerate(predictor.size_raw):
        tensors[f"size.{k}"] = np.asarray(as_array(raw), dtype=np.float32)
    if predictor.encoder.trainable:
        for name, value in predictor.encoder.module.state_dict().items():
            tensors[f"encoder.{name}"] = value.detach().cpu().numpy()
    tensors = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    meta = {"format": FILE_FORMAT, "version": FILE_VERSION, "config": asdict(predictor.config),
            "encoder": predictor.encoder.config(), "extra_names": predictor.extra_names,
            "input_width": int(len(predictor.mean)), "feature_names": predictor.feature_names(),
            "trained_on": trained_on(predictor.history), "provenance": predictor.provenance,
            "history": predictor.history}
    json_path, weights_path = base.with_suffix(".json"), base.with_suffix(".safetensors")
    _atomic_write(weights_path, lambda p: save_file(tensors, str(p)))
    _atomic_write(json_path, lambda p: p.write_text(json.dumps(meta, indent=1) + "\n"))
    return json_path, weights_path


def read_description(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The checked JSON description of the predictor at ``path`` (no tensors read): ``(json path, meta)``."""
    from predictors.onnx_net.predictor import PredictorError

    base = base_path(path)
    meta_path = base.with_suffix(".json")
    if not meta_path.is_file():
        raise PredictorError(f"predictor file {meta_path} does not exist")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise PredictorError(f"{meta_path} is not a predictor description (invalid JSON: {err})") from None
    except OSError as err:
        raise PredictorError(f"{meta_path} cannot be read: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FILE_FORMAT:
        raise PredictorError(f"{meta_path} is not an {FILE_FORMAT} file")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FILE_VERSION:
        raise PredictorError(f"{meta_path}: key 'version' is {version!r}; this code reads versions 1 to {FILE_VERSION}")
    _need(meta, "config", dict, meta_path)
    width = _need(meta, "input_width", int, meta_path)
    if not 1 <= width <= MAX_INPUT_WIDTH:
        raise PredictorError(f"{meta_path}: key 'input_width' must be in [1, {MAX_INPUT_WIDTH}], got {width}")
    extra = meta.setdefault("extra_names", [])
    if not isinstance(extra, list) or not all(isinstance(n, str) for n in extra):
        raise PredictorError(f"{meta_path}: key 'extra_names' must be a list of strings")
    history = meta.setdefault("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) and isinstance(h.get("groups", {}), dict)
                                                and all(isinstance(v, int) for v in h.get("groups", {}).values())
                                                for h in history):
        raise PredictorError(f"{meta_path}: key 'history' must be a list of fit summaries")
    if not isinstance(meta.setdefault("provenance", {}), dict):
        raise PredictorError(f"{meta_path}: key 'provenance' must be an object")
    return meta_path, meta


def _need(meta: dict[str, Any], key: str, kind: type, where: Path) -> Any:
    from predictors.onnx_net.predictor import PredictorError

    if key not in meta:
        raise PredictorError(f"{where}: key {key!r} is missing")
    value = meta[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PredictorError(f"{where}: key {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _mlp_shapes(width: int, hidden: int, layers: int) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of :func:`~predictors.onnx_net.heads.mlp` (Linear, ReLU, Dropout per layer)."""
    fan_in = [width] + [hidden] * layers
    fan_out = [hidden] * layers + [1]
    shapes: dict[str, tuple[int, ...]] = {}
    for name, n_in, n_out in zip(linear_names(layers), fan_in, fan_out):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n_out, n_in), (n_out,)
    return shapes


def load_predictor(cls: type[OnnxNetPredictor], path: str | os.PathLike[str]) -> OnnxNetPredictor:
    """Read a predictor written by :func:`save_predictor` (see the module docstring for what is checked)."""
    from safetensors import SafetensorError, safe_open

    from predictors.onnx_net.predictor import SIZE_FEATURES, WIDTH_SIZE_FEATURES, PredictorConfig, PredictorError

    meta_path, meta = read_description(path)
    weights_path = meta_path.with_suffix(".safetensors")
    if not weights_path.is_file():
        raise PredictorError(f"predictor file {weights_path} does not exist")
    config_dict = dict(meta["config"])
    try:
        config = PredictorConfig(**config_dict)
    except TypeError as err:  # an unknown key
        known = set(PredictorConfig.__dataclass_fields__)
        unknown = sorted(set(config_dict) - known)
        raise PredictorError(f"{meta_path}: config key {unknown[0] if unknown else '?'!r} is unknown ({err})") from None
    except ValueError as err:
        raise PredictorError(f"{meta_path}: {err}") from None
    width = int(meta["input_width"])
    try:
        with safe_open(str(weights_path), framework="numpy") as handle:  # shapes first, data only once they fit
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
            expected = {"norm.mean": (width,), "norm.std": (width,)}
            for k in range(config.ensemble):
                expected |= {f"head.{k}.{n}": s for n, s in _mlp_shapes(width, config.hidden, config.layers).items()}
                if config.size_prior:
                    expected[f"size.{k}"] = (len(WIDTH_SIZE_FEATURES if config.width_features else SIZE_FEATURES),)
            encoder_config = config.encoder
            if encoder_config.get("name") == "transformer":
                dim, vocab = encoder_config.get("dim", 64), encoder_config.get("vocab", 4096)
                if shapes.get("encoder.tokens.weight") != (vocab + 1, dim):
                    raise PredictorError(f"{weights_path}: tensor 'encoder.tokens.weight' has shape "
                                         f"{shapes.get('encoder.tokens.weight')}, the description says {(vocab + 1, dim)}")
            for name, shape in expected.items():
                if name not in shapes:
                    raise PredictorError(f"{weights_path}: tensor {name!r} is missing")
                if shapes[name] != shape:
                    raise PredictorError(f"{weights_path}: tensor {name!r} has shape {list(shapes[name])}, "
                                         f"the description says {list(shape)}")
            stray = sorted(n for n in shapes if n not in expected and not n.startswith("encoder."))
            if stray:
                raise PredictorError(f"{weights_path}: tensor {stray[0]!r} is not part of the description")
            tensors = {name: handle.get_tensor(name) for name in shapes}
    except PredictorError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise PredictorError(f"{weights_path} is not a readable safetensors file: {err}") from None
    for name, tensor in tensors.items():
        if np.issubdtype(tensor.dtype, np.floating) and not bool(np.isfinite(tensor).all()):
            raise PredictorError(f"{weights_path}: tensor {name!r} holds non-finite values")
    if bool((tensors["norm.std"] < 0).any()):
        raise PredictorError(f"{weights_path}: tensor 'norm.std' holds negative standard deviations")
    try:
        predictor = cls(config)
    except (TypeError, ValueError) as err:  # the text encoder's own arguments
        raise PredictorError(f"{meta_path}: config key 'encoder' is invalid: {err}") from None
    predictor.extra_names = list(meta["extra_names"])
    predictor.history = list(meta["history"])
    predictor.provenance = dict(meta["provenance"])
    if len(predictor.feature_names()) != width:
        raise PredictorError(f"{meta_path}: key 'input_width' is {width}, but its encoder, global features and "
                             f"extra inputs make {len(predictor.feature_names())} features")
    predictor.mean = tensors["norm.mean"].astype(np.float64)
    predictor.std = tensors["norm.std"].astype(np.float64)
    if predictor.encoder.trainable:  # only a trainable text encoder needs torch to score
        import torch

        state = {k[len("encoder."):]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("encoder.")}
        try:
            predictor.encoder.module.load_state_dict(state)
        except RuntimeError as err:
            raise PredictorError(f"{weights_path}: the encoder does not match its description: {err}") from None
        predictor.encoder.module.eval()
    for k in range(config.ensemble):  # numpy arrays: scoring needs no torch (predictor.make_trainable() for a fit)
        prefix = f"head.{k}."
        predictor.heads.append(ArrayHead.from_state({n[len(prefix):]: v for n, v in tensors.items()
                                                     if n.startswith(prefix)}, config.layers))
        if config.size_prior:
            predictor.size_raw.append(tensors[f"size.{k}"].astype(np.float32))
    return predictor


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``nas predictor info`` prints: the checked description, without the tensors."""
    meta_path, meta = read_description(path)
    weights = meta_path.with_suffix(".safetensors")
    groups = meta.get("trained_on") or trained_on(meta["history"])
    return {"path": str(meta_path), "version": meta["version"], "encoder": meta["config"].get("encoder"),
            "variant": meta["config"].get("variant", "chain"), "input_width": meta["input_width"],
            "ensemble": meta["config"].get("ensemble"), "extra_names": meta["extra_names"],
            "trained_on": groups, "fits": len(meta["history"]), "provenance": meta["provenance"],
            "size_bytes": meta_path.stat().st_size + (weights.stat().st_size if weights.is_file() else 0),
            "examples": sum(groups.values()) if groups else 0,
            "seconds": math.fsum(float(h.get("seconds", 0.0)) for h in meta["history"])}
