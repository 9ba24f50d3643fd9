"""``OnnxNetPredictor``: accuracy ranking from an ONNX graph written as text (after ONNX-Net, Qin et al., 2025).

Pipeline for one model: ONNX -> text lines (:class:`predictors.onnx_text.OnnxTextEncoder`, ``relative`` variant:
each line names its inputs by relative value ids, so the wiring survives) -> a bag of the distinct lines and of
the pairs of consecutive lines, with counts -> each distinct entry embedded by a text encoder (cached)
-> pooled (:func:`~predictors.onnx_net.encoders.pool_lines`) -> concatenated with global features (log params,
log FLOPs, depth, operator histogram) and optional extra inputs (e.g. zero-cost proxy scores) -> standardised ->
an ensemble of MLP heads -> the mean of their scores (higher = better).

Training (:meth:`OnnxNetPredictor.fit`): pairwise margin-ranking loss by default (MSE, listwise as options),
pairs only within one group (space); each ensemble member holds out its own validation split drawn from the
*training* data (per group) and keeps its best epoch by validation Kendall tau (early stopping). Calling
``fit`` on a trained predictor fine-tunes it: the heads start from their trained weights and keep the input
standardisation they learned on (re-estimating it on a few new labels would change what every input means to
them). Standardisation is robust (:func:`fit_standardisation`): a feature constant in the training data is
dropped, never divided by a tiny number, and standardised values are clipped to +-:data:`Z_CLIP`.

Zero-shot transfer (``size_prior``, ``width_features``; the shipped default and the priors use both): absolute
sizes do not transfer across spaces, the order of sizes within a space does. So each head's score gets a
non-negative learnt weighting of log params, log FLOPs, depth and the narrowest hidden width, each z-scored
(:func:`size_inputs`) either against a fixed :class:`SizeReference` of the space being searched (pointwise: a
model's score does not depend on which other models are scored with it; what a search passes) or, without one,
within the set being ranked (transductive; training: within each group), and the hidden-width statistics of
:func:`~predictors.onnx_net.features.width_features` join the global features.

Files (:meth:`save` / :meth:`load`): ``<path>.json`` (configuration, feature names, training summary) and
``<path>.safetensors`` (head weights, standardisation, trainable encoder weights). No pickle.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from predictors.onnx_net.encoders import TextEncoder, make_encoder, normalise_line, pool_lines
from predictors.onnx_net.features import WIDTH_FEATURES, global_feature_names, global_features, width_features
from predictors.onnx_net.files import load_predictor, save_predictor
from predictors.onnx_net.heads import as_array, as_array_head, in_features, mlp, softplus
from predictors.onnx_net.losses import LOSSES, loss_fn
from predictors.onnx_text import OnnxTextEncoder, OnnxTextError, load_model

#: Joins two consecutive lines into one entry of the bag (the ``relative`` input; see :func:`encode_graph`).
BIGRAM_JOIN = "=>"
DEFAULT_DIR = Path(__file__).parent / "pretrained"


class PredictorError(RuntimeError):
    """A predictor file is missing or inconsistent, or the predictor is used before it was trained."""


@dataclass(frozen=True)
class EncodedGraph:
    """What the predictor reads of one model: its distinct (normalised) text lines with their counts and its
    global feature vector. JSON-able, so corpora of encoded graphs can be cached."""

    lines: tuple[str, ...]
    counts: tuple[int, ...]
    global_features: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"lines": list(self.lines), "counts": list(self.counts), "global_features": list(self.global_features)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EncodedGraph:
        return cls(tuple(data["lines"]), tuple(int(c) for c in data["counts"]),
                   tuple(float(v) for v in data["global_features"]))


ModelLike = "str | os.PathLike[str] | bytes | onnx.ModelProto | EncodedGraph"


_WEIGHT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose floating-point initializers (above 8 elements) keep their shapes, not their values.

    The text form never shows weight values, and shape inference on the skeleton is ~25x faster than on a model
    carrying megabytes of weights (it serialises the whole model)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for init in out.graph.initializer:
        if init.data_type in _WEIGHT_TYPES and math.prod(init.dims) > 8:  # small constants are written by value
            init.ClearField("raw_data")
            for name in ("float_data", "double_data", "int32_data"):
                init.ClearField(name)
    return out


def encode_graph(model: Any, *, variant: str = "relative", encoder: OnnxTextEncoder | None = None) -> EncodedGraph:
    """Read one model (path, bytes, ``ModelProto`` or an :class:`EncodedGraph`, returned as is).

    ``variant`` ``"relative"`` (the default) keeps the wiring: each line's inputs are written as relative value
    ids (``V-2``: the value defined two values before the line), so two graphs that differ only in which value
    feeds which node read differently. ``"chain"`` erases the ids to ``V`` (the bag of lines of the first
    version, kept for comparison). ``encoder`` (an :class:`~predictors.onnx_text.OnnxTextEncoder`) keeps its memo
    tables across calls; a fresh one is used if omitted.
    """
    if isinstance(model, EncodedGraph):
        return model
    encoder = encoder or OnnxTextEncoder()
    proto = load_model(model)
    encoding = encoder.encode(proto, variant=variant)
    text = encoding.lines if variant == "relative" else [normalise_line(line) for line in encoding.lines]
    lines = Counter(text)
    if variant == "relative":  # the order too: each pair of consecutive lines is a "line" of the bag
        lines.update(f"{a} {BIGRAM_JOIN} {b}" for a, b in zip(text, text[1:]))
    distinct = sorted(lines)
    feats = global_features(proto, shape_text=encoding.shapes, stats=encoding.stats, graph=encoding.graph).vector()
    return EncodedGraph(tuple(distinct), tuple(lines[line] for line in distinct), tuple(float(v) for v in feats))


def _exit_with_parent(parent: int) -> None:
    """Encoding-pool worker initializer: a daemon thread ends the worker once its parent is gone (it is then
    re-parented), so a process killed with SIGKILL (a search driver) leaves no encoding workers behind. Polled rather
    than ``PR_SET_PDEATHSIG``, which fires when the *thread* that started the pool ends (a refit thread, say)."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _encode_chunk(models: list[bytes], variant: str) -> list[EncodedGraph | str]:
    """Worker-process side of :meth:`OnnxNetPredictor.encode`: one text encoder for a chunk of models; the
    encoding of each, or its error text."""
    encoder = OnnxTextEncoder()
    out: list[EncodedGraph | str] = []
    for model in models:
        try:
            out.append(encode_graph(model, variant=variant, encoder=encoder))
        except OnnxTextError as err:
            out.append(str(err))
    return out


@dataclass(frozen=True)
class TrainingSummary:
    """What the last :meth:`OnnxNetPredictor.fit` saw and reached."""

    examples: int
    groups: dict[str, int]
    epochs: list[int]
    val_tau: list[float]
    seconds: float
    fine_tuned: bool


@dataclass
class PredictorConfig:
    """Hyper-parameters of :class:`OnnxNetPredictor` (all have defaults; saved with the predictor)."""

    encoder: dict[str, Any] = field(default_factory=lambda: {"name": "hash", "dim": 64, "max_n": 3})
    variant: str = "relative"
    use_global_features: bool = True
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.1
    ensemble: int = 5
    loss: str = "ranking"
    margin: float = 0.1
    lr: float = 3e-3
    weight_decay: float = 1e-2
    max_epochs: int = 300
    patience: int = 40
    batch_size: int = 256
    val_fraction: float = 0.2
    refit: bool = True
    min_epochs: int = 150
    seed: int = 0
    #: processes that encode ONNX files in parallel for large batches (0 = one per CPU core, 1 = in-process)
    encode_workers: int = 0
    #: add a size term to every head's score (see :func:`size_inputs`): the sizes (:data:`SIZE_FEATURES`)
    #: z-scored against a :class:`SizeReference` or within the set being ranked, weighted by non-negative learnt
    #: weights
    size_prior: bool = False
    #: add the hidden-width statistics (:func:`~predictors.onnx_net.features.width_features`) to the global
    #: features, and the narrowest width to the size term
    width_features: bool = False

    def __post_init__(self) -> None:
        for name, (kind, low, high) in _FIELD_RULES.items():
            value = getattr(self, name)
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok:
                raise ValueError(f"config key {name!r} must be {kind.__name__}, got {value!r}")
            if low is not None and not low <= value <= high:
                raise ValueError(f"config key {name!r} must be in [{low}, {high}], got {value!r}")
        if not isinstance(self.encoder, dict) or not isinstance(self.encoder.get("name"), str):
            raise ValueError(f"config key 'encoder' must be a dict with a 'name', got {self.encoder!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {list(LOSSES)}")
        if self.variant not in INPUT_VARIANTS:
            raise ValueError(f"unknown text variant {self.variant!r}; choose one of {list(INPUT_VARIANTS)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if (self.size_prior or self.width_features) and not self.use_global_features:
            raise ValueError("size_prior and width_features need use_global_features (they are global features)")
        if self.size_prior and self.encoder.get("name") == "transformer":
            raise ValueError("size_prior is not implemented for the trainable transformer encoder")


#: What :class:`PredictorConfig`'s scalar fields must be: (type, lowest, highest); bounds keep a tampered file
#: from asking for absurd sizes (``hidden: 1e9`` would be a 712 GB head).
_FIELD_RULES: dict[str, tuple[type, Any, Any]] = {
    "use_global_features": (bool, None, None), "refit": (bool, None, None), "size_prior": (bool, None, None),
    "width_features": (bool, None, None),
    "hidden": (int, 1, 16384), "layers": (int, 1, 64), "ensemble": (int, 1, 256),
    "dropout": (float, 0.0, 0.99), "margin": (float, 0.0, 1e6), "lr": (float, 0.0, 10.0),
    "weight_decay": (float, 0.0, 1e3), "max_epochs": (int, 0, 1_000_000), "patience": (int, 1, 1_000_000),
    "batch_size": (int, 1, 1 << 24), "val_fraction": (float, 0.0, 1.0), "min_epochs": (int, 0, 1_000_000),
    "seed": (int, -(1 << 63), (1 << 63) - 1), "encode_workers": (int, 0, 4096),
}

#: Input variants of the predictor (see :func:`encode_graph`).
INPUT_VARIANTS = ("relative", "chain", "compact")


#: A feature whose standard deviation in the training data is at most this, relative to ``max(1, |mean|)``, is
#: constant there: it is dropped (its standardised value is 0 for every input), never divided by a tiny number.
MIN_RELATIVE_STD = 1e-6
#: Standardised inputs are clipped to +-Z_CLIP, so a feature that varied little in training cannot dominate the
#: head on a target space where it varies a lot (zero-shot transfer).
Z_CLIP = 10.0


def fit_standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of ``x``, with the std of (near-)constant columns set to 0, which
    marks them dropped (see :data:`MIN_RELATIVE_STD` and :func:`standardise`)."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(0)
    std = x.std(0)
    std = np.where(std <= MIN_RELATIVE_STD * np.maximum(1.0, np.abs(mean)), 0.0, std)
    return mean, std


def standardise(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``clip((x - mean) / std, +-Z_CLIP)`` per column; 0 where ``std == 0`` (a dropped column)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)
    return np.clip(z, -Z_CLIP, Z_CLIP)


#: The global features of the size term (:func:`size_inputs`): scale-free sizes that every space has
#: (with ``width_features``, also the narrowest hidden width: :data:`WIDTH_SIZE_FEATURES`).
SIZE_FEATURES = ("log_params", "log_flops", "depth")
WIDTH_SIZE_FEATURES = SIZE_FEATURES + ("width_min",)


@dataclass(frozen=True)
class SizeReference:
    """A fixed standardisation of the size term's inputs: the per-column mean and standard deviation of
    :data:`SIZE_FEATURES` (or :data:`WIDTH_SIZE_FEATURES`) over a reference set of one space, e.g. a fixed-seed
    sample of a search's space within its limits, or every architecture of a table (their sizes, never their
    labels). Given to :meth:`OnnxNetPredictor.predict` (``size_reference=``), it makes the size term pointwise:
    ``z = clip((x - mean) / std, +-Z_CLIP)`` per column, the same number for a model whatever else is scored in
    the call, so scores of separate calls share one scale (a search's cache of them stays valid).

    Attributes:
        features: the size feature names, in column order (must be the predictor's :meth:`~OnnxNetPredictor.
            size_feature_names`).
        mean, std: per column; ``std == 0`` marks a column constant in the reference (its term is 0).
        count: how many models the reference was computed from.
        source: how it was made (free text, e.g. ``"sample of nb-macro: 64 derivations, seed 0"``).
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: int
    source: str = ""

    def __post_init__(self) -> None:
        if not len(self.features) == len(self.mean) == len(self.std):
            raise ValueError(f"a SizeReference needs one mean and one std per feature, got {len(self.features)} "
                             f"features, {len(self.mean)} means, {len(self.std)} stds")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)) or any(v < 0 for v in self.std):
            raise ValueError(f"a SizeReference needs finite means and non-negative finite stds, got mean "
                             f"{list(self.mean)}, std {list(self.std)}")

    @classmethod
    def from_sizes(cls, sizes: np.ndarray, features: Sequence[str], *, source: str = "") -> SizeReference:
        """The reference of ``sizes`` (``(n, len(features))`` raw size values; :func:`fit_standardisation`)."""
        sizes = np.asarray(sizes, dtype=np.float64)
        if sizes.ndim != 2 or sizes.shape[1] != len(features) or len(sizes) == 0:
            raise ValueError(f"a SizeReference needs an (n >= 1, {len(features)}) array of sizes, got shape "
                             f"{sizes.shape}")
        mean, std = fit_standardisation(sizes)
        return cls(tuple(features), tuple(float(v) for v in mean), tuple(float(v) for v in std), len(sizes),
                   source)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"features": list(self.features), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SizeReference:
        return cls(tuple(str(f) for f in data["features"]), tuple(float(v) for v in data["mean"]),
                   tuple(float(v) for v in data["std"]), int(data["count"]), str(data.get("source", "")))


def size_inputs(x: np.ndarray, columns: Sequence[int], groups: Sequence[Any] | None = None, *,
                reference: SizeReference | None = None) -> np.ndarray:
    """The size term's inputs, ``(n, len(columns))``, values clipped to +-:data:`Z_CLIP`.

    With ``reference``: ``x[:, columns]`` standardised by the reference's mean and std, row by row (``groups`` is
    not used): a model's inputs do not depend on the other rows. Without: z-scored within each group
    (``groups=None``: the rows are one group); a column constant within a group is 0 there.

    Transductive by design: a search ranks a set of candidates of one space, and whether size helps is a fact
    about the order *within* that set (bigger networks train better on NATS-Bench SSS and NAS-Bench-Macro alike),
    while absolute sizes do not transfer across spaces (a NAS-Bench-Macro network has 10x the parameters of the
    best NATS-SSS one). So the term sees only where a model stands in its set: a single model (or a set of equal
    sizes) gets 0, and its score is then the heads' alone. A search, whose candidates come in batches of every
    size, passes a :class:`SizeReference` of its space instead: the same place in the space's size distribution
    (what a training group, a sample of its space, measures), one scale for every batch."""
    x = np.asarray(x, dtype=np.float64)[:, list(columns)]
    if reference is not None:
        if x.shape[1] != len(reference.mean):
            raise PredictorError(f"the size reference has {len(reference.mean)} columns, the size term "
                                 f"{x.shape[1]}")
        return standardise(x, np.asarray(reference.mean), np.asarray(reference.std))
    labels = np.zeros(len(x), dtype=int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    out = np.zeros_like(x)
    for g in np.unique(labels):
        rows = labels == g
        mean, std = fit_standardisation(x[rows])
        out[rows] = standardise(x[rows], mean, std)
    return out


def _mlp(inputs: int, config: PredictorConfig) -> Any:
    return mlp(inputs, config.hidden, config.layers, config.dropout)


def _group_tau(scores: np.ndarray, targets: np.ndarray, groups: np.ndarray) -> float:
    from scipy.stats import kendalltau

    taus = []
    for g in np.unique(groups):
        m = groups == g
        if m.sum() >= 3 and np.ptp(targets[m]) > 0:
            tau = kendalltau(scores[m], targets[m]).statistic
            if np.isfinite(tau):
                taus.append(tau)
    return float(np.mean(taus)) if taus else float("nan")



def _checked_labels(y: np.ndarray, groups: Sequence[str] | None) -> np.ndarray:
    """The ranking group of each label (one group ``"all"`` by default), after checking the labels a fit needs:
    at least two, all finite, one group per label (shared by :meth:`OnnxNetPredictor.fit` and ``fit_features``)."""
    if len(y) < 2:
        raise ValueError("fit needs at least 2 labelled models")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"accuracies contain {int((~np.isfinite(y)).sum())} non-finite values; drop failed runs")
    group_labels = np.asarray(["all"] * len(y) if groups is None else [str(g) for g in groups])
    if len(group_labels) != len(y):
        raise ValueError(f"got {len(group_labels)} groups for {len(y)} models")
    return group_labels

class OnnxNetPredictor:
    """Predicts how well architectures will train from their ONNX files (scores: higher = better).

    ::

        from predictors import OnnxNetPredictor
        predictor = OnnxNetPredictor.default()            # pretrained, shipped with the package
        scores = predictor.predict(["a.onnx", onnx_bytes, model_proto])
        predictor.fit(models, accuracies)                 # fine-tunes (trains, if untrained)
        predictor.save("my_predictor"); OnnxNetPredictor.load("my_predictor")

    ``OnnxNetPredictor()`` is untrained; keyword arguments override :class:`PredictorConfig` fields.
    """

    def __init__(self, config: PredictorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = PredictorConfig(**overrides)
        elif overrides:
            config = PredictorConfig(**{**asdict(config), **overrides})
        self.config = config
        self.encoder: TextEncoder = make_encoder(config.encoder)
        #: reads ONNX files as text; its memo tables live as long as the predictor
        self.text_encoder = OnnxTextEncoder()
        #: where the training data came from (set by whoever trains it, e.g. ``nas predictor fit``; saved)
        self.provenance: dict[str, Any] = {}
        self.heads: list[Any] = []
        #: with ``config.size_prior``: one raw (pre-softplus) weight vector per head for the size term
        self.size_raw: list[Any] = []
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.extra_names: list[str] = []
        self.summary: TrainingSummary | None = None
        self.history: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- features
    @property
    def is_trained(self) -> bool:
        return bool(self.heads)

    def encode(self, models: Iterable[Any]) -> list[EncodedGraph]:
        """:class:`EncodedGraph` of each model (raises :class:`~predictors.onnx_text.OnnxTextError` naming the
        position of a model that is not valid ONNX). Batches of at least 32 files are encoded by a pool of
        ``encode_workers`` processes (kept for later calls; :meth:`close` ends it)."""
        models = list(models)
        workers = self.config.encode_workers or (os.cpu_count() or 1)
        if "fork" not in __import__("multiprocessing").get_all_start_methods():
            workers = 1  # like torch's DataLoader, the pool forks (spawn would re-import the user's __main__)
        todo = [i for i, m in enumerate(models) if not isinstance(m, EncodedGraph)]
        if workers > 1 and len(todo) >= 32:
            pool = self._encode_pool(workers)
            payload = []
            for i in todo:  # send weight-free skeletons: pickling megabytes of weights would cost more than encoding
                try:
                    payload.append(skeleton(load_model(models[i])).SerializeToString())
                except OnnxTextError as err:
                    raise OnnxTextError(f"model {i}: {err}") from err
            size = max(1, -(-len(todo) // (2 * workers)))
            chunks = [payload[b:b + size] for b in range(0, len(payload), size)]
            results = [r for part in pool.map(_encode_chunk, chunks, [self.config.variant] * len(chunks)) for r in part]
            out: list[Any] = list(models)
            for i, result in zip(todo, results):
                if isinstance(result, str):
                    raise OnnxTextError(f"model {i}: {result}")
                out[i] = result
            return out
        out = []
        for i, model in enumerate(models):
            try:
                out.append(encode_graph(model, variant=self.config.variant, encoder=self.text_encoder))
            except OnnxTextError as err:
                raise OnnxTextError(f"model {i}: {err}") from err
        return out

    def _encode_pool(self, workers: int) -> Any:
        if getattr(self, "_pool", None) is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_exit_with_parent, initargs=(os.getpid(),))
        return self._pool

    def close(self) -> None:
        """Stop the encoding processes (they are also stopped when the predictor is garbage collected)."""
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_pool"] = None
        return state

    def _text_features(self, graphs: Sequence[EncodedGraph]) -> np.ndarray:
        everything = list(dict.fromkeys(line for g in graphs for line in g.lines))
        vectors = self.encoder.embed(everything)
        index = {line: i for i, line in enumerate(everything)}
        return np.stack([pool_lines(vectors[[index[line] for line in g.lines]], np.asarray(g.counts))
                         if g.lines else np.zeros(2 * self.encoder.dim) for g in graphs])

    def features(self, graphs: Sequence[EncodedGraph], extra: np.ndarray | None = None) -> np.ndarray:
        """The head's raw (unstandardised) input matrix for encoded graphs."""
        parts = [self._text_features(graphs)]
        if self.config.use_global_features:
            parts.append(np.asarray([g.global_features for g in graphs], dtype=np.float64).reshape(len(graphs), -1))
        if self.config.width_features:
            parts.append(np.asarray([width_features(g.lines, g.counts) for g in graphs]).reshape(len(graphs), -1))
        if extra is not None:
            extra = np.asarray(extra, dtype=np.float64).reshape(len(graphs), -1)
            parts.append(np.where(np.isfinite(extra), extra, 0.0))
        return np.concatenate(parts, axis=1)

    def feature_names(self) -> list[str]:
        names = [f"text_sum_{i}" for i in range(self.encoder.dim)] + [f"text_mean_{i}" for i in range(self.encoder.dim)]
        if self.config.use_global_features:
            names += global_feature_names()
        if self.config.width_features:
            names += list(WIDTH_FEATURES)
        return names + list(self.extra_names)

    def size_feature_names(self) -> tuple[str, ...]:
        """The size term's inputs: :data:`SIZE_FEATURES`, or :data:`WIDTH_SIZE_FEATURES` with ``width_features``."""
        return WIDTH_SIZE_FEATURES if self.config.width_features else SIZE_FEATURES

    def size_columns(self) -> list[int]:
        """Columns of :meth:`size_feature_names` in :meth:`features`' rows (the size term's inputs)."""
        names = self.feature_names()
        return [names.index(name) for name in self.size_feature_names()]

    def size_reference(self, x: np.ndarray, *, source: str = "") -> SizeReference:
        """The :class:`SizeReference` of raw input rows ``x`` (as :meth:`features` makes them): the mean and std
        of their size columns (:meth:`size_columns`). ``x`` should be a reference set of one space (a fixed sample
        of it, or all of a table's architectures), never the candidates of one call."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names()):
            raise PredictorError(f"feature width {x.shape[-1]} does not match this predictor's "
                                 f"{len(self.feature_names())}")
        return SizeReference.from_sizes(x[:, self.size_columns()], self.size_feature_names(), source=source)

    def _checked_reference(self, reference: SizeReference | None) -> SizeReference | None:
        if reference is not None and tuple(reference.features) != tuple(self.size_feature_names()):
            raise PredictorError(f"the size reference is of {list(reference.features)}, this predictor's size term "
                                 f"reads {list(self.size_feature_names())}")
        return reference

    def size_weights(self) -> np.ndarray:
        """The size term's non-negative weights, ``(heads, len(SIZE_FEATURES))`` (empty without ``size_prior``)."""
        if not self.size_raw:
            return np.zeros((0, len(self.size_feature_names())))
        return np.stack([softplus(as_array(r)) for r in self.size_raw]).astype(np.float64)

    def make_trainable(self) -> None:
        """Turn the heads (and size weights) into torch modules (parameters), as training needs them. A predictor
        read from its files holds them as numpy arrays (:mod:`predictors.onnx_net.heads`), so that scoring never
        imports torch; every fit calls this first."""
        import torch

        self.heads = [h if isinstance(h, torch.nn.Module) else h.to_module(self.config.dropout) for h in self.heads]
        self.size_raw = [r if isinstance(r, torch.nn.Parameter) else
                         torch.nn.Parameter(torch.from_numpy(np.array(r, dtype=np.float32, copy=True)))
                         for r in self.size_raw]

    def fit(self, models: Sequence[Any], accuracies: Sequence[float], *, groups: Sequence[str] | None = None,
            extra: np.ndarray | None = None, extra_names: Sequence[str] | None = None,
            size_reference: SizeReference | None = None, verbose: bool = False) -> OnnxNetPredictor:
        """Train on ``models`` labelled with ``accuracies`` (fine-tune when already trained).

        Args:
            models: ONNX paths, bytes, ``ModelProto``s or :class:`EncodedGraph`s.
            accuracies: one number per model (any scale; only the order within a group matters for ranking).
            groups: a label per model (e.g. its space); only models of one group are compared. Default: one group.
            extra: optional ``(n, k)`` extra inputs such as zero-cost proxy scores (non-finite values -> 0); the
                same columns must then be given to :meth:`predict`.
            extra_names: names of the extra columns (saved with the predictor).
            size_reference: see :meth:`fit_features`.
        """

        start = time.perf_counter()
        y = np.asarray(accuracies, dtype=np.float64)
        if len(models) != len(y):
            raise ValueError(f"got {len(models)} models but {len(y)} accuracies")
        group_labels = _checked_labels(y, groups)
        graphs = self.encode(models)
        if extra is not None:
            width = np.asarray(extra).reshape(len(y), -1).shape[1]
            names = list(extra_names) if extra_names is not None else [f"extra_{i}" for i in range(width)]
            if self.is_trained and len(names) != len(self.extra_names):
                raise PredictorError(f"this predictor was trained with {len(self.extra_names)} extra inputs "
                                     f"{self.extra_names}; got {len(names)}")
            self.extra_names = names
        elif self.is_trained and self.extra_names:
            raise PredictorError(f"this predictor needs its extra inputs {self.extra_names}")
        fine_tune = self.is_trained
        if self.encoder.trainable:
            import torch

            with torch.random.fork_rng(devices=[]):  # seeded inside; the caller's global torch RNG is left as it was
                return self._fit_transformer(graphs, y, group_labels, extra, fine_tune, start, verbose)
        return self.fit_features(self.features(graphs, extra), y, groups=group_labels, size_reference=size_reference,
                                 verbose=verbose, _start=start)

    def fit_features(self, x: np.ndarray, accuracies: Sequence[float], *, groups: Sequence[str] | None = None,
                     epochs: int | None = None, lr: float | None = None, seed: int | None = None,
                     size_reference: SizeReference | None = None, verbose: bool = False,
                     _start: float | None = None) -> OnnxNetPredictor:
        """Train (fine-tune when trained) on raw input rows as :meth:`features` makes them (extra columns
        included), without encoding ONNX again: :meth:`fit` after encoding, and an online surrogate's refit.

        Args:
            x: ``(n, width)`` raw rows; a trained predictor needs its own width.
            accuracies, groups: as in :meth:`fit`.
            epochs: ``None``: :meth:`fit`'s procedure (validation split, early stopping, refit on all rows).
                A number (a trained predictor only): a **warm fine-tune**: every head trains exactly ``epochs``
                epochs on all rows from its current weights, no validation split (cheap enough to run every few
                results of a search).
            lr: the learning rate of this call (default: the configuration's).
            seed: seeds the warm fine-tune's shuffling and dropout (default: the configuration's), so that the
                same rows and seed give the same weights.
            size_reference: the size term's standardisation (with ``config.size_prior``). ``None`` (pretraining
                on corpora of several spaces): sizes are z-scored within each ranking group, each group being a
                sample of its own space. A :class:`SizeReference` (fine-tuning on rows of the one space that the
                reference describes, e.g. an online surrogate's refit): every row is standardised by it, the
                scale the predictor is then used on (``predict(..., size_reference=...)``), so the learnt size
                weights mean the same in training and inference. The ranking losses compare rows within a group
                only, so the two differ in the scale of the term, not in its offset.
        """
        import torch

        with torch.random.fork_rng(devices=[]):  # heads and dropout seeded inside; the caller's RNG is left as it was
            return self._fit_features(x, accuracies, groups=groups, epochs=epochs, lr=lr, seed=seed,
                                      size_reference=size_reference, verbose=verbose, _start=_start)

    def _fit_features(self, x: np.ndarray, accuracies: Sequence[float], *, groups: Sequence[str] | None,
                      epochs: int | None, lr: float | None, seed: int | None, size_reference: SizeReference | None,
                      verbose: bool, _start: float | None) -> OnnxNetPredictor:
        import torch

        start = time.perf_counter() if _start is None else _start
        y = np.asarray(accuracies, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"got {len(x)} feature rows but {len(y)} accuracies")
        group_labels = _checked_labels(y, groups)
        fine_tune = self.is_trained
        if epochs is not None and not fine_tune:
            raise PredictorError("a warm fine-tune (epochs=...) needs a trained predictor")
        if self.encoder.trainable:
            raise PredictorError("a predictor with a trainable text encoder is trained on models, not feature rows")
        if not fine_tune:  # fine-tuning keeps the standardisation the heads learned on
            self.mean, self.std = fit_standardisation(x)
        elif x.shape[1] != len(self.mean):
            raise PredictorError(f"input width changed from {len(self.mean)} to {x.shape[1]}")
        xs = torch.tensor(standardise(x, self.mean, self.std), dtype=torch.float32)
        codes = {g: i for i, g in enumerate(sorted(set(group_labels)))}
        g_index = torch.tensor([codes[g] for g in group_labels])
        targets = torch.tensor(y, dtype=torch.float32)
        if not fine_tune:
            self.heads, self.size_raw = [], []
            for k in range(self.config.ensemble):
                torch.manual_seed(self.config.seed * 1000 + k)
                self.heads.append(_mlp(xs.shape[1], self.config))
                if self.config.size_prior:
                    self.size_raw.append(torch.nn.Parameter(torch.zeros(len(self.size_feature_names()))))
        else:
            self.make_trainable()
            if in_features(self.heads[0]) != xs.shape[1]:
                raise PredictorError(f"input width changed from {in_features(self.heads[0])} to {xs.shape[1]}")
        reference = self._checked_reference(size_reference)
        zs = torch.tensor(size_inputs(x, self.size_columns(), group_labels, reference=reference),
                          dtype=torch.float32) if self.config.size_prior else None
        trained_epochs, taus = [], []
        everything = np.arange(len(y))
        for k, head in enumerate(self.heads):
            raw = self.size_raw[k] if zs is not None else None
            size_term = (lambda idx, raw=raw: zs[idx] @ torch.nn.functional.softplus(raw)) if raw is not None else None
            extra_params = [raw] if raw is not None else []
            if epochs is None:
                e, tau = self._train_head(head, lambda idx: xs[idx], targets, g_index, group_labels, k, verbose,
                                          extra_params, size_term)
            else:
                with torch.random.fork_rng(devices=[]):  # dropout draws seeded here, the caller's RNG untouched
                    torch.manual_seed((self.config.seed if seed is None else seed) * 1000 + k)
                    e, tau = self._train_epochs(head, list(head.parameters()) + extra_params, lambda idx: xs[idx],
                                                targets, g_index, group_labels, everything, np.asarray([], int),
                                                int(epochs), k, size_term, lr=lr, seed=seed)
                head.eval()
            trained_epochs.append(e)
            taus.append(tau)
        self.summary = TrainingSummary(len(y), dict(Counter(group_labels.tolist())), trained_epochs, taus,
                                       time.perf_counter() - start, fine_tune)
        self.history.append(asdict(self.summary))
        return self

    def _split(self, group_labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.config.seed * 7919 + k)
        train, val = [], []
        for g in np.unique(group_labels):
            idx = rng.permutation(np.flatnonzero(group_labels == g))
            n_val = int(round(self.config.val_fraction * len(idx))) if len(idx) >= 10 else 0
            val.extend(idx[:n_val].tolist())
            train.extend(idx[n_val:].tolist())
        return np.asarray(sorted(train)), np.asarray(sorted(val))

    def _train_head(self, head: Any, inputs: Any, targets: Any, g_index: Any, group_labels: np.ndarray, k: int,
                    verbose: bool, extra_params: Sequence[Any] = (), size_term: Any = None) -> tuple[int, float]:
        import torch

        cfg = self.config
        train, val = self._split(group_labels, k)
        params = list(head.parameters()) + list(extra_params)
        initial = [p.detach().clone() for p in params]
        best_epoch, best_tau = self._train_epochs(head, params, inputs, targets, g_index, group_labels, train, val,
                                                  cfg.max_epochs, k, size_term)
        if cfg.refit and len(val):
            # The validation split chose the number of epochs; train again from the same start on all the data.
            with torch.no_grad():
                for p, saved in zip(params, initial):
                    p.copy_(saved)
            epochs = max(best_epoch, cfg.min_epochs)
            everything = np.sort(np.concatenate([train, val]))
            self._train_epochs(head, params, inputs, targets, g_index, group_labels, everything, np.asarray([], int),
                               epochs, k, size_term)
        head.eval()
        if verbose:
            print(f"head {k}: best epoch {best_epoch}, validation tau {best_tau:.3f}")
        return best_epoch, float(best_tau)

    def _train_epochs(self, head: Any, params: list[Any], inputs: Any, targets: Any, g_index: Any,
                      group_labels: np.ndarray, train: np.ndarray, val: np.ndarray, max_epochs: int,
                      k: int, size_term: Any = None, lr: float | None = None,
                      seed: int | None = None) -> tuple[int, float]:
        """Train up to ``max_epochs``; with a validation split, stop after ``patience`` epochs without a better
        validation Kendall tau and restore the best epoch's weights. ``size_term(idx)``, if given, is added to
        the head's scores (the size term, see :func:`size_inputs`)."""
        import torch

        def score(idx: Any) -> Any:
            out = head(inputs(idx)).squeeze(-1)
            return out + size_term(idx) if size_term is not None else out

        cfg = self.config
        optimizer = torch.optim.AdamW(params, lr=cfg.lr if lr is None else lr, weight_decay=cfg.weight_decay)
        loss_of = loss_fn(cfg.loss, cfg.margin)
        rng = np.random.default_rng((cfg.seed if seed is None else seed) * 31 + k)
        best_tau, best_epoch, best_state = -math.inf, 0, None
        y_np = targets.numpy()
        for epoch in range(1, max_epochs + 1):
            head.train()
            order = rng.permutation(train)
            for b in range(0, len(order), cfg.batch_size):
                idx = torch.as_tensor(np.sort(order[b:b + cfg.batch_size]))
                loss = loss_of(score(idx), targets[idx], g_index[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if len(val) == 0:
                best_epoch, best_tau = epoch, float("nan")
                continue
            head.eval()
            with torch.no_grad():
                scores = score(torch.as_tensor(val)).numpy()
            tau = _group_tau(scores, y_np[val], group_labels[val])
            if np.isfinite(tau) and tau > best_tau:
                best_tau, best_epoch = tau, epoch
                best_state = [p.detach().clone() for p in params]
            if epoch - best_epoch >= cfg.patience:
                break
        if best_state is not None:
            with torch.no_grad():
                for p, saved in zip(params, best_state):
                    p.copy_(saved)
        return best_epoch, best_tau

    def _fit_transformer(self, graphs: list[EncodedGraph], y: np.ndarray, group_labels: np.ndarray,
                         extra: np.ndarray | None, fine_tune: bool, start: float, verbose: bool) -> OnnxNetPredictor:
        """End-to-end training of the transformer line encoder with one head (its own ensemble of 1..k heads
        shares the encoder, and the encoder is trained with the first head only)."""
        import torch

        encoder = self.encoder
        others = np.asarray([g.global_features for g in graphs], dtype=np.float64) if self.config.use_global_features \
            else np.zeros((len(graphs), 0))
        if extra is not None:
            others = np.concatenate([others, np.nan_to_num(np.asarray(extra, dtype=np.float64).reshape(len(graphs), -1),
                                                            nan=0.0, posinf=0.0, neginf=0.0)], axis=1)
        text_dim = 2 * encoder.dim
        if fine_tune:  # keep the standardisation the heads learned on
            other_mean, other_std = self.mean[text_dim:], self.std[text_dim:]
        else:
            other_mean, other_std = fit_standardisation(others)
            self.mean = np.concatenate([np.zeros(text_dim), other_mean])
            self.std = np.concatenate([np.ones(text_dim), other_std])
        other_t = torch.tensor(standardise(others, other_mean, other_std), dtype=torch.float32)
        codes = {g: i for i, g in enumerate(sorted(set(group_labels)))}
        g_index = torch.tensor([codes[g] for g in group_labels])
        targets = torch.tensor(y, dtype=torch.float32)

        def inputs(idx: Any) -> Any:
            chosen = [graphs[i] for i in idx.tolist()]
            lines = list(dict.fromkeys(line for g in chosen for line in g.lines))
            where = {line: i for i, line in enumerate(lines)}
            vectors = encoder.forward_lines(lines)
            rows = []
            for g in chosen:
                v = vectors[[where[line] for line in g.lines]]
                c = torch.tensor(g.counts, dtype=torch.float32)[:, None]
                total = float(c.sum())
                summed = (v * c).sum(0)
                rows.append(torch.cat([summed / math.sqrt(total), summed / total]))
            return torch.cat([torch.stack(rows), other_t[idx]], dim=1)

        if not fine_tune:
            self.heads = []
            for k in range(self.config.ensemble):
                torch.manual_seed(self.config.seed * 1000 + k)
                self.heads.append(_mlp(text_dim + others.shape[1], self.config))
        else:
            self.make_trainable()
        epochs, taus = [], []
        encoder.module.train()
        for k, head in enumerate(self.heads):
            trainable = list(encoder.module.parameters()) if k == 0 else []
            if k > 0:
                encoder.module.eval()
            e, tau = self._train_head(head, inputs, targets, g_index, group_labels, k, verbose, trainable)
            epochs.append(e)
            taus.append(tau)
        encoder.module.eval()
        encoder.clear_cache()
        self.summary = TrainingSummary(len(y), dict(Counter(group_labels.tolist())), epochs, taus,
                                       time.perf_counter() - start, fine_tune)
        self.history.append(asdict(self.summary))
        return self

    # ---------------------------------------------------------------- inference
    def predict(self, models: Sequence[Any], *, extra: np.ndarray | None = None,
                size_reference: SizeReference | None = None) -> np.ndarray:
        """Scores of ``models`` (numpy float64 array, higher = better); needs a trained predictor.

        With ``config.size_prior`` and no ``size_reference``, the scores are transductive: the size term places
        each model among the ``models`` of this call (one set of one space; see :func:`size_inputs`), so scores of
        one call rank those models, and scores of separate calls are not on one scale (a single model's size term
        is 0). With a :class:`SizeReference` of the space (:meth:`size_reference`) the size term places each model
        in that reference instead: scores are pointwise, on one scale across calls (what a search uses)."""
        if not self.is_trained:
            raise PredictorError("this OnnxNetPredictor is untrained: call fit(...) first or use "
                                 "OnnxNetPredictor.default()")
        if self.extra_names and extra is None:
            raise PredictorError(f"this predictor needs its extra inputs {self.extra_names}")
        models = list(models)
        if not models:
            return np.zeros(0)
        graphs = self.encode(models)
        return self._head_scores(self.features(graphs, extra if self.extra_names else None),
                                 size_reference=size_reference).mean(0)

    def predict_features(self, x: np.ndarray, groups: Sequence[Any] | None = None, *,
                         size_reference: SizeReference | None = None) -> np.ndarray:
        """Scores of raw input rows as :meth:`features` makes them (the mean over the ensemble's heads): lets a
        caller that encoded its architectures once score them again under another trained predictor of the
        same configuration without re-encoding (not for a trainable text encoder, whose features are learnt).
        ``groups`` (a label per row): the sets the size term ranks within (default: all rows are one set, as in
        :meth:`predict`; not used with a ``size_reference``, which makes every row's score its own, as in
        :meth:`predict`)."""
        return self.head_scores(x, groups, size_reference=size_reference).mean(0)

    def head_scores(self, x: np.ndarray, groups: Sequence[Any] | None = None, *,
                    size_reference: SizeReference | None = None) -> np.ndarray:
        """Each ensemble head's scores of raw input rows, shape ``(heads, rows)`` (see :meth:`predict_features`)."""
        if not self.is_trained:
            raise PredictorError("this OnnxNetPredictor is untrained: call fit(...) first")
        if self.encoder.trainable:
            raise PredictorError("a predictor with a trainable text encoder scores models, not feature rows")
        return self._head_scores(x, groups, size_reference=size_reference)

    def _head_scores(self, x: np.ndarray, groups: Sequence[Any] | None = None, *,
                     size_reference: SizeReference | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        assert self.mean is not None and self.std is not None
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise PredictorError(f"feature width {x.shape[-1]} does not match the trained width {len(self.mean)}")
        xs = standardise(x, self.mean, self.std).astype(np.float32)
        scores = np.stack([as_array_head(head)(xs) for head in self.heads]).astype(np.float64)
        if self.size_raw:
            reference = self._checked_reference(size_reference)
            scores = scores + self.size_weights() @ size_inputs(x, self.size_columns(), groups,
                                                                reference=reference).T
        return scores

    # ---------------------------------------------------------------- files
    def save(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<path>.json`` and ``<path>.safetensors`` (no pickle, each written atomically); returns both
        paths. The JSON records every ranking group the predictor learned from (``trained_on``) and
        :attr:`provenance` (see :mod:`predictors.onnx_net.files`)."""
        return save_predictor(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OnnxNetPredictor:
        """Read a predictor written by :meth:`save` (``path`` with or without suffix).

        Raises:
            PredictorError: a missing file, invalid JSON, a missing or mistyped key (named), sizes outside the
                configuration's bounds, tensors that do not match the description or hold non-finite values.
        """
        return load_predictor(cls, path)

    @classmethod
    def default(cls) -> OnnxNetPredictor:
        """The pretrained predictor shipped in the package (see ``benchmarks/train_default_predictor.py``)."""
        base = DEFAULT_DIR / "default"
        if not base.with_suffix(".json").is_file():
            raise PredictorError(f"the pretrained predictor is missing from {DEFAULT_DIR}; "
                                 "rebuild it with python benchmarks/train_default_predictor.py")
        return cls.load(base)
