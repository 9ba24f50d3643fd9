"""The configuration of one search, as a plain dataclass loadable from YAML (``nas search run --config``).

Every field has a default, so ``SearchConfig()`` is the README's default search: einspace on digits, seeded with
small known networks, regularised evolution whose candidates are pre-selected by the predictor and the ``zen``
proxy (4 scored per trained one), 24 trained candidates in 3 rounds of 8, 20 epochs with ASHA. The nested
sections are typed and validated once, here: ``train`` is a :class:`~nas.train.TrainConfig`, ``tune`` a
:class:`~nas.search.settings.TuneSettings`, ``limits`` a :class:`~search_spaces.sampler.Limits`. At the YAML/JSON
edge (and in the constructor) each may be given as a mapping of its fields, which merges over :data:`DEFAULT_TRAIN`,
:data:`DEFAULT_TUNE` and the space's :func:`default_limits` (give only what changes); :meth:`SearchConfig.to_dict`
writes them back as plain dicts of every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import NasError

if TYPE_CHECKING:
    from nas.search.settings import TuneSettings
    from nas.train.config import TrainConfig
    from search_spaces.sampler import Limits

#: Small known networks for einspace on 8x8 digits, written as derivations (einspace found that seeding the
#: search with known architectures gave its largest gains). A convolution is ``(routing im2col[...] linear
#: col2im)``; the classifier head averages the spatial axes, so every seed first brings the map down to 1x1 with a
#: 4x4/stride-4 "convolution" (a fully connected layer over the 4x4 map). Trained alone with the default protocol
#: (20 epochs, seed 0) they reach 99.6%, 99.3%, 98.5% and 98.9% test accuracy on digits.
EINSPACE_DIGITS_SEEDS: tuple[str, ...] = (
    # conv3x3(16) -> norm -> relu -> conv3x3/2(32) -> norm -> relu -> conv4x4/4(128) -> relu      (72k params)
    "(sequential (sequential (routing im2col[kernel=3,stride=1,padding=1] linear[width=16] col2im) "
    "(sequential norm leaky_relu)) (sequential (sequential (routing im2col[kernel=3,stride=2,padding=1] "
    "linear[width=32] col2im) (sequential norm leaky_relu)) (sequential (routing im2col[kernel=4,stride=4,padding=0] "
    "linear[width=128] col2im) leaky_relu)))",
    # conv3x3/2(64) -> norm -> relu -> conv4x4/4(128) -> relu                                     (133k params)
    "(sequential (sequential (routing im2col[kernel=3,stride=2,padding=1] linear[width=64] col2im) "
    "(sequential norm leaky_relu)) (sequential (routing im2col[kernel=4,stride=4,padding=0] linear[width=128] col2im) "
    "leaky_relu))",
    # an MLP on the whole image: 64 -> 256 -> 128                                                   (51k params)
    "(routing im2col[kernel=8,stride=8,padding=0] (sequential (sequential linear[width=256] leaky_relu) "
    "(sequential linear[width=128] leaky_relu)) col2im)",
    # conv3x3(32) -> relu -> conv3x3/2(64) -> relu -> conv4x4/4(128) -> relu                      (151k params)
    "(sequential (sequential (routing im2col[kernel=3,stride=1,padding=1] linear[width=32] col2im) leaky_relu) "
    "(sequential (sequential (routing im2col[kernel=3,stride=2,padding=1] linear[width=64] col2im) leaky_relu) "
    "(sequential (routing im2col[kernel=4,stride=4,padding=0] linear[width=128] col2im) leaky_relu)))",
)

DEFAULT_LIMITS: dict[str, int] = {"max_params": 300_000, "max_flops": 1_000_000, "max_elements": 16384, "max_nodes": 24}
"""Sampling limits of einspace searches (bounding size, FLOPs and activations keeps every trial a few seconds)."""
EINSPACE_SPACES = ("einspace", "einspace-1d")
"""Spaces whose search limits default to :data:`DEFAULT_LIMITS`; every other space uses its own default limits."""


def default_limits(space: str) -> dict[str, int]:
    """The limits a search of ``space`` starts from (``limits`` merge over them): :data:`DEFAULT_LIMITS` for
    einspace, else the space's own (benchmark spaces such as nb-macro or nats-sss hold every architecture)."""
    from dataclasses import asdict as _asdict

    from search_spaces.exceptions import UnknownSpaceError
    from search_spaces.spaces import space_spec

    if space in EINSPACE_SPACES:
        return dict(DEFAULT_LIMITS)
    try:
        return _asdict(space_spec(space).default_limits)
    except UnknownSpaceError as err:
        raise ConfigError(str(err)) from None


DEFAULT_TRAIN: dict[str, Any] = {"epochs": 20, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.0005,
                                 "batch_size": 64, "schedule": "cosine"}
"""Training protocol of the default search (the labelled digits benchmarks' protocol, 20 epochs)."""
DEFAULT_TUNE: dict[str, Any] = {"scheduler": "asha", "grace_period": 5, "reduction_factor": 3, "cpus_per_trial": 1}
"""Ray Tune settings of the default search."""

DEFAULT_SCORERS: tuple[str, ...] = ("predictor", "zen")
"""Scorers of a training search when none are given: the pretrained predictor and the ``zen`` proxy."""
TABLE_SCORERS: tuple[str, ...] = ()
"""Scorers of a table search when none are given: none (the search is the strategy alone; a benchmark adds them)."""

LOOPS = ("auto", "async", "rounds")
"""Values of :attr:`SearchConfig.loop`."""

OBJECTIVES = {"val_acc": "maximize", "params": "minimize", "flops": "minimize", "latency": "minimize"}


def _default_section(name: str) -> Any:
    """The default ``train`` (:data:`DEFAULT_TRAIN`) or ``tune`` (:data:`DEFAULT_TUNE`) section, typed."""
    if name == "train":
        from nas.train.config import TrainConfig

        return TrainConfig.from_dict(DEFAULT_TRAIN)
    from nas.search.settings import TuneSettings

    return TuneSettings.from_dict(DEFAULT_TUNE)


class ConfigError(NasError, ValueError):
    """A search configuration names an unknown field or an invalid value (one line, naming the field)."""


@dataclass(frozen=True)
class SearchConfig:
    """One search (see the module docstring); every field has a default.

    Attributes:
        space, dataset: what to search and on what (``nas spaces``; digits, mnist1d, mnist5k, .npz, folder).
        strategy: random, evolution, guided, adaptive or optuna (``nas.search.strategies``). ``guided`` gets the
            search's scorer as its ``scorer``.
        strategy_options: keyword options of the strategy (e.g. ``population_size``). For the strategies with a
            population (evolution, guided, adaptive) ``population_size`` defaults to ``batch`` (one round's
            trials replace the population) and ``tournament_size`` to ``max(2, (batch + 1) // 3)``; see
            :meth:`strategy_kwargs`.
        seeds: known networks proposed first (derivation or architecture strings); ``"default"`` = the
            space's shipped seeds where there are some (einspace on 8x8 inputs: :data:`EINSPACE_DIGITS_SEEDS`).
            Seeds are always trained (never dropped by the scorers).
        budget: number of candidates trained (the search ends when that many trials finished: ``ok``,
            ``stopped`` and ``failed`` all count).
        batch: candidates trained per round (one Ray Tune run).
        oversample: candidates proposed and scored per trained one (the best ``1 / oversample`` survive).
        scorers: how candidates are ranked before training: ``predictor`` (the ONNX-Net predictor, default
            pretrained one or ``predictor_path``) and/or zero-cost proxy names (``zen``, ``synflow``, ...); ranks are
            averaged. Empty = no pre-training selection (``oversample`` is then ignored). Not given (``None``):
            :data:`DEFAULT_SCORERS` when training, :data:`TABLE_SCORERS` (none) in table mode.
        predictor_path: an ONNX-Net predictor file (``nas predictor train``) instead of the shipped one.
        objectives: ``val_acc`` first, then any of ``params``, ``flops``, ``latency`` (ONNX Runtime ms/sample,
            batch 1, measured on the driver).
        seed: seed of the strategy, the data split, proxies and training.
        limits: sampling limits of the space (a :class:`search_spaces.sampler.Limits`; a mapping of its fields
            merges over :func:`default_limits`).
        train: the training protocol (a :class:`nas.train.TrainConfig`; a mapping of its fields merges over
            :data:`DEFAULT_TRAIN`); each trial's ``seed`` is the search's seed (:meth:`train_config`), its
            ``threads`` the trial's CPUs.
        tune: how trials run (a :class:`nas.search.settings.TuneSettings`; a mapping of its fields merges over
            :data:`DEFAULT_TUNE`: ``scheduler`` (asha/fifo), ``grace_period``, ``reduction_factor``,
            ``cpus_per_trial``, ``gpus_per_trial``, ``num_cpus`` (of a local Ray), ``max_concurrent``,
            ``memory_limit_mb``; ``address`` is given per run, not stored).
        proxy_batch: training examples in the zero-cost proxies' batch.
        faults: **fault injection, for tests only**: ``{trial ordinal: fault}`` where the ordinal counts the
            search's trials from 0 in the order they were queued and the fault is one of
            :data:`nas.search.trainable.FAULTS` (``raise``, ``crash``, ``nan``, ``oom``; ``oom`` needs
            ``tune.memory_limit_mb``). Empty in real use.
        evaluator: how a selected candidate gets its result: ``train`` (Ray Tune training, the default) or
            ``table:PATH`` (benchmark mode: a look-up in a table file, ``table:PATH#KEY`` to read another accuracy
            column; see :mod:`nas.search.evaluators.table`). In table mode ``dataset``, ``train`` and ``tune`` are
            not used: candidates are built for the space's standard input (3x32x32 for nb201, nb-macro, nats-sss)
            with a 10-class head, proxies see a fixed seeded Gaussian batch, and no Ray is started.
        loop: how trials are scheduled: ``auto`` (the default) is ``async`` when training (one asynchronous Ray
            Tune run for the whole search: a candidate starts the moment a slot frees, ``batch`` being the number
            scored and queued ahead of demand; :mod:`nas.search.asynchronous`) and ``rounds`` in table mode (look-ups
            are instant: batches of ``batch``, the strategy told at the end of each). ``rounds`` when training is the
            legacy round loop (one Tune run per round, a barrier between rounds), kept only for
            ``benchmarks/utilization.py``'s comparison.
    """

    space: str = "einspace"
    dataset: str = "digits"
    strategy: str = "evolution"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[str, ...] | str = "default"
    budget: int = 24
    batch: int = 8
    oversample: int = 4
    scorers: tuple[str, ...] | None = None
    predictor_path: str | None = None
    objectives: tuple[str, ...] = ("val_acc", "params")
    seed: int = 0
    # the space's default limits depend on ``space``: an empty mapping here, parsed in __post_init__
    limits: Limits = field(default_factory=dict)
    train: TrainConfig = field(default_factory=lambda: _default_section("train"))
    tune: TuneSettings = field(default_factory=lambda: _default_section("tune"))
    proxy_batch: int = 64
    faults: dict[int, str] = field(default_factory=dict)
    evaluator: str = "train"
    loop: str = "auto"

    def __post_init__(self) -> None:
        from nas.search.evaluators.base import parse_evaluator

        try:
            parse_evaluator(self.evaluator)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if self.loop not in LOOPS:
            raise ConfigError(f"loop must be one of {', '.join(LOOPS)}, got {self.loop!r}")
        if self.loop == "async" and self.table_mode:
            raise ConfigError("loop 'async' needs training (evaluator: train); table searches run in rounds")
        if self.scorers is None:
            object.__setattr__(self, "scorers", TABLE_SCORERS if self.table_mode else DEFAULT_SCORERS)
        for key in ("budget", "batch", "oversample", "proxy_batch"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{key} must be an integer >= 1, got {value!r}")
        from nas.search.validate import check_seed

        check_seed(self.seed)
        if isinstance(self.scorers, str) or isinstance(self.objectives, str):
            raise ConfigError("scorers and objectives are lists")
        object.__setattr__(self, "scorers", tuple(self.scorers))
        object.__setattr__(self, "objectives", tuple(self.objectives))
        if not self.objectives or self.objectives[0] != "val_acc":
            raise ConfigError(f"the first objective must be val_acc, got {list(self.objectives)}")
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise ConfigError(f"unknown objective(s) {unknown}; choose from {list(OBJECTIVES)}")
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives repeat: {list(self.objectives)}")
        self._check_sections()

    def _check_sections(self) -> None:
        from nas.search.settings import TuneSettings
        from nas.search.trainable import FAULTS
        from nas.train.config import TrainConfig
        from predictors import PROXY_NAMES
        from search_spaces.sampler import Limits

        typed = {"limits": Limits, "train": TrainConfig, "tune": TuneSettings}
        for key in ("strategy_options", "limits", "train", "tune", "faults"):
            value = getattr(self, key)
            if not isinstance(value, Mapping) and not (key in typed and isinstance(value, typed[key])):
                raise ConfigError(f"{key} must be a mapping, got {type(value).__name__}")
        object.__setattr__(self, "strategy_options", dict(self.strategy_options))
        # each section is parsed once, here: a mapping merges over its defaults (give only what changes)
        if isinstance(self.train, Mapping):
            try:
                object.__setattr__(self, "train", TrainConfig.from_dict({**DEFAULT_TRAIN, **self.train}))
            except (TypeError, ValueError) as err:
                raise ConfigError(f"train: {err}") from None
        if isinstance(self.tune, Mapping):
            try:
                object.__setattr__(self, "tune", TuneSettings.from_dict({**DEFAULT_TUNE, **self.tune}))
            except (TypeError, ValueError) as err:
                raise ConfigError(f"tune: {err}") from None
        if isinstance(self.limits, Mapping):
            try:
                object.__setattr__(self, "limits", Limits(**{**default_limits(self.space), **self.limits}))
            except TypeError as err:
                names = [f.name for f in fields(Limits)]
                raise ConfigError(f"limits: {err}; valid: {', '.join(names)}") from None
            except ValueError as err:  # LimitsError: not a non-negative integer, or too deep
                raise ConfigError(f"limits: {err}") from None
        bad = [s for s in self.scorers if s != "predictor" and s not in PROXY_NAMES]
        if bad:
            raise ConfigError(f"unknown scorer(s) {bad}; choose 'predictor' and/or zero-cost proxies: "
                              f"{', '.join(PROXY_NAMES)}")
        faults: dict[int, str] = {}
        for key, value in self.faults.items():
            try:
                ordinal = int(key)  # JSON (the stored config) turns the keys into strings
            except (TypeError, ValueError):
                raise ConfigError(f"faults: keys are trial ordinals (integers), got {key!r}") from None
            if value not in FAULTS:
                raise ConfigError(f"faults: unknown fault {value!r}; choose from {', '.join(FAULTS)}")
            faults[ordinal] = value
        if "oom" in faults.values() and not self.tune.memory_limit_mb:
            raise ConfigError("faults: the 'oom' fault needs tune.memory_limit_mb")
        object.__setattr__(self, "faults", faults)

    @property
    def evaluator_parts(self) -> tuple[str, str | None, str | None]:
        """``(kind, table path, accuracy key)`` of :attr:`evaluator` (see
        :func:`nas.search.evaluators.parse_evaluator`)."""
        from nas.search.evaluators.base import parse_evaluator

        return parse_evaluator(self.evaluator)

    @property
    def asynchronous(self) -> bool:
        """Whether trials run as one asynchronous Tune run (``loop`` ``async``, or ``auto`` when training)."""
        return self.loop == "async" or (self.loop == "auto" and not self.table_mode)

    @property
    def table_mode(self) -> bool:
        """Whether candidates are looked up in a table (benchmark mode) instead of trained."""
        return self.evaluator_parts[0] == "table"

    @property
    def directions(self) -> list[str]:
        """``maximize`` / ``minimize`` per objective."""
        return [OBJECTIVES[o] for o in self.objectives]

    def seed_list(self, input_shape: tuple[int, ...]) -> list[str]:
        """The seeds to use: the explicit list, or the shipped ones for this space and input shape."""
        if self.seeds == "default":
            if self.space == "einspace" and tuple(input_shape[1:]) == (8, 8):
                return list(EINSPACE_DIGITS_SEEDS)
            return []
        if isinstance(self.seeds, str):
            return [self.seeds] if self.seeds else []
        return list(self.seeds)

    def strategy_kwargs(self) -> dict[str, Any]:
        """``strategy_options`` with the population defaults filled in where the strategy takes them."""
        from nas.search.strategies import strategy_options

        accepted = strategy_options(self.strategy)
        options = dict(self.strategy_options)
        if "population_size" in accepted:
            options.setdefault("population_size", max(2, self.batch))
        if "tournament_size" in accepted:
            options.setdefault("tournament_size", max(2, (self.batch + 1) // 3))
        return options

    def train_config(self) -> dict[str, Any]:
        """The training protocol of every trial: ``train`` with the search's seed (``TrainConfig.to_dict()``)."""
        from dataclasses import replace

        return replace(self.train, seed=self.seed).to_dict()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``from_dict`` gives the config back)."""
        data = asdict(self)
        for key in ("scorers", "objectives"):
            data[key] = list(data[key])
        if not isinstance(self.seeds, str):
            data["seeds"] = list(self.seeds)
        data["faults"] = {str(k): v for k, v in self.faults.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchConfig:
        """Build from a mapping of fields; sections (``train``, ``tune``, ``limits``) merge over the defaults.

        Raises:
            ConfigError: an unknown field (the message lists the valid ones) or an invalid value.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown search config field(s) {unknown}; valid fields: {sorted(names)}")
        data = {k: v for k, v in data.items() if v is not None or k == "predictor_path"}
        for key in ("scorers", "objectives", "seeds"):
            value = data.get(key)
            if key in data and not isinstance(value, str) and not (
                    isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"{key} must be a list of names, got {value!r}")
        for key in ("scorers", "objectives"):
            if key in data:
                value = data[key]
                data[key] = tuple(s.strip() for s in value.split(",") if s.strip()) if isinstance(value, str) \
                    else tuple(value)
        if "seeds" in data and isinstance(data["seeds"], list):
            data["seeds"] = tuple(data["seeds"])
        for key in ("train", "tune", "limits", "strategy_options", "faults"):
            if key in data:
                if not isinstance(data[key], Mapping):
                    raise ConfigError(f"{key} must be a mapping, got {type(data[key]).__name__}")
                data[key] = dict(data[key])
        try:
            return cls(**data)
        except TypeError as err:
            raise ConfigError(f"bad search config: {err}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchConfig:
        """Load a YAML mapping of fields (an empty file gives the defaults); bounded in size, aliases included
        (:func:`nas.util.yaml_file.load_yaml_mapping`)."""
        from nas.errors import InputFileError
        from nas.util.yaml_file import load_yaml_mapping

        path = Path(path)
        try:
            data = load_yaml_mapping(path, what="search config")
        except InputFileError as err:
            raise ConfigError(str(err)) from None
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
