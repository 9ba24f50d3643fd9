"""Datasets: built-in loaders, user .npz files and image folders, stratified deterministic splits, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nas.data import DATASETS, Dataset, DatasetError, Split, load_dataset


def _rows(split: Split) -> set[bytes]:
    return {row.tobytes() for row in split.x}


def _check_common(ds: Dataset) -> None:
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split), *ds.input_shape) and split.y.shape == (len(split),)
        assert split.y.min() >= 0 and split.y.max() < ds.num_classes
        assert np.isfinite(split.x).all()
        assert not split.x.flags.writeable and not split.y.flags.writeable


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_builtin_names_are_listed() -> None:
    assert set(DATASETS) == {"digits", "mnist1d", "mnist5k"}
    assert all(isinstance(text, str) and text and "\n" not in text for text in DATASETS.values())


def test_digits_shapes_sizes_and_standardisation(digits: Dataset) -> None:
    _check_common(digits)
    assert digits.name == "digits" and digits.input_shape == (1, 8, 8) and digits.num_classes == 10
    sizes = len(digits.train), len(digits.val), len(digits.test)
    assert sum(sizes) == 1797
    assert abs(sizes[1] - 0.15 * 1797) <= 10 and abs(sizes[2] - 0.15 * 1797) <= 10
    assert abs(float(digits.train.x.mean())) < 1e-4 and abs(float(digits.train.x.std()) - 1.0) < 1e-3
    assert "digits" in digits.describe() and "1x8x8" in digits.describe() and "10 classes" in digits.describe()
    assert load_dataset().describe() == digits.describe()  # digits is the default


def test_splits_are_disjoint_and_cover_everything(digits: Dataset) -> None:
    train, val, test = _rows(digits.train), _rows(digits.val), _rows(digits.test)
    assert len(train) == len(digits.train) and len(val) == len(digits.val) and len(test) == len(digits.test)
    assert not train & val and not train & test and not val & test
    assert len(train | val | test) == 1797


def test_splits_are_stratified(digits: Dataset) -> None:
    overall = np.bincount(np.concatenate([digits.train.y, digits.val.y, digits.test.y]), minlength=10)
    for split in (digits.train, digits.val, digits.test):
        share = np.bincount(split.y, minlength=10) / len(split)
        assert np.abs(share - overall / overall.sum()).max() < 0.01


def test_splits_are_deterministic_for_a_seed_and_differ_across_seeds(digits: Dataset) -> None:
    again = load_dataset("digits", seed=0)
    for a, b in ((digits.train, again.train), (digits.val, again.val), (digits.test, again.test)):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
    other = load_dataset("digits", seed=1)
    assert len(other.val) == len(digits.val)
    assert not np.array_equal(other.val.y, digits.val.y) or not np.array_equal(other.val.x, digits.val.x)


def test_fractions_change_split_sizes() -> None:
    ds = load_dataset("digits", val_fraction=0.1, test_fraction=0.3)
    assert abs(len(ds.val) - 180) <= 10 and abs(len(ds.test) - 539) <= 10
    with pytest.raises(DatasetError, match="val_fraction"):
        load_dataset("digits", val_fraction=0.6, test_fraction=0.5)


def test_mnist1d_keeps_its_test_set_and_leaves_global_rngs_alone() -> None:
    state = np.random.get_state()
    ds = load_dataset("mnist1d", seed=3)
    assert np.array_equal(np.random.get_state()[1], state[1])
    _check_common(ds)
    assert ds.input_shape == (1, 40) and ds.num_classes == 10
    assert len(ds.test) == 1000 and len(ds.train) + len(ds.val) == 4000 and abs(len(ds.val) - 600) <= 10
    assert not _rows(ds.train) & _rows(ds.val)
    other = load_dataset("mnist1d", seed=4)  # cached generator output, a different split of it
    np.testing.assert_array_equal(ds.test.x, other.test.x)
    assert not np.array_equal(ds.val.x, other.val.x)


def test_mnist5k() -> None:
    ds = load_dataset("mnist5k")
    _check_common(ds)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert len(ds.train) + len(ds.val) + len(ds.test) == 5000
    assert ds.train.x.min() >= 0.0 and ds.train.x.max() <= 1.0
    assert not _rows(ds.train) & _rows(ds.test)


def test_npz_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    x = np.arange(120 * 5 * 6, dtype=np.float64).reshape(120, 5, 6)  # (N, H, W): every row unique
    y = np.repeat(np.arange(3), 40)
    file = tmp_path / "toy.npz"
    np.savez(file, x=x, y=y)
    ds = load_dataset(str(file), seed=2)
    _check_common(ds)
    assert ds.name == "toy" and ds.input_shape == (1, 5, 6) and ds.num_classes == 3
    assert (len(ds.train), len(ds.val), len(ds.test)) == (84, 18, 18)
    assert not _rows(ds.train) & _rows(ds.val) and not _rows(ds.val) & _rows(ds.test)
    for split in (ds.train, ds.val, ds.test):  # labels travel with their inputs
        np.testing.assert_array_equal(split.y, (split.x[:, 0, 0, 0] // 30 // 40).astype(np.int64))
    named = load_dataset("mine", path=file, seed=2)
    assert named.name == "mine"
    np.testing.assert_array_equal(named.val.x, ds.val.x)

    seq = tmp_path / "seq.npz"  # (N, C, L) with a given test set and float labels that are integers
    np.savez(seq, x=rng.normal(size=(60, 2, 16)), y=np.tile(np.arange(4.0), 15),
             x_test=rng.normal(size=(20, 2, 16)), y_test=np.tile(np.arange(4), 5))
    ds = load_dataset(str(seq))
    _check_common(ds)
    assert ds.input_shape == (2, 16) and ds.num_classes == 4 and len(ds.test) == 20
    assert len(ds.train) + len(ds.val) == 60


def _png(path, size, mode="L", value=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_image_folder(tmp_path) -> None:
    for c, name in enumerate(("cat", "dog")):
        for i in range(10):
            _png(tmp_path / "pets" / name / f"{i}.png", (6, 4), value=100 * c + i)
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset(str(tmp_path / "pets"))
    _check_common(ds)
    assert ds.name == "pets" and ds.input_shape == (1, 4, 6) and ds.num_classes == 2
    assert ds.classes == ("cat", "dog")
    assert len(ds.train) + len(ds.val) + len(ds.test) == 20 and len(ds.val) == 4 and len(ds.test) == 4
    assert ds.train.x.min() >= 0.0 and ds.train.x.max() <= 1.0
    for split in (ds.train, ds.val, ds.test):  # dog pixels are >= 100/255
        np.testing.assert_array_equal(split.y, (split.x[:, 0, 0, 0] >= 99.5 / 255).astype(np.int64))

    _png(tmp_path / "pets" / "dog" / "color.png", (6, 4), mode="RGB", value=7)
    rgb = load_dataset(str(tmp_path / "pets"))
    assert rgb.input_shape == (3, 4, 6)


def test_image_folder_with_mismatched_sizes_names_the_file(tmp_path) -> None:
    for name in ("a", "b"):
        for i in range(4):
            _png(tmp_path / "imgs" / name / f"{i}.png", (8, 8))
    _png(tmp_path / "imgs" / "b" / "odd.png", (9, 8))
    with pytest.raises(DatasetError, match=r"b/odd\.png.* 9x8 .*same size"):
        load_dataset(str(tmp_path / "imgs"))


def test_image_folder_errors(tmp_path) -> None:
    _png(tmp_path / "one" / "only" / "0.png", (4, 4))
    with pytest.raises(DatasetError, match="one subfolder per class"):
        load_dataset(str(tmp_path / "one"))
    _png(tmp_path / "bad" / "a" / "0.png", (4, 4))
    (tmp_path / "bad" / "b").mkdir()
    (tmp_path / "bad" / "b" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read 'b/0\.png'"):
        load_dataset(str(tmp_path / "bad"))


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("digts")
    message = str(info.value)
    assert "unknown dataset 'digts'" in message and "did you mean 'digits'?" in message
    assert "mnist1d" in message and ".npz" in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_npz_errors_are_one_line(tmp_path) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"\x00garbage that is not a zip archive")
    with pytest.raises(DatasetError, match="cannot read dataset file") as info:
        load_dataset(str(corrupt))
    assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npz"))
    no_y = tmp_path / "no_y.npz"
    np.savez(no_y, x=np.zeros((10, 4)))
    with pytest.raises(DatasetError, match="'x' and 'y'"):
        load_dataset(str(no_y))
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=np.zeros((10, 4)), y=np.zeros(9, dtype=int))
    with pytest.raises(DatasetError, match="expected \\(10,\\)"):
        load_dataset(str(mismatch))
    fractional = tmp_path / "fractional.npz"
    np.savez(fractional, x=np.zeros((10, 4)), y=np.full(10, 0.5))
    with pytest.raises(DatasetError, match="integer class labels"):
        load_dataset(str(fractional))
    tiny = tmp_path / "tiny.npz"
    np.savez(tiny, x=np.zeros((3, 4)), y=np.arange(3))
    with pytest.raises(DatasetError, match="too few examples"):
        load_dataset(str(tiny))
