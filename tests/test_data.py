"""Tests for qselax.data: bundled sets, splits, standardisation, files, IDX."""

import doctest
import gzip
import os
import re
import struct

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qselax import data
from qselax.data import DATASETS, FASHION_MNIST_DIR, Dataset, load_dataset, read_idx

BUNDLED = {  # name: (samples, features, classes)
    "digits": (1797, 64, 10),
    "iris": (150, 4, 3),
    "wine": (178, 13, 3),
    "breast_cancer": (569, 30, 2),
}
IDX_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


# ----------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of ``arr``: magic, big-endian sizes, big-endian data."""
    arr = np.asarray(arr)
    header = bytes([0, 0, IDX_CODES[arr.dtype.type], arr.ndim])
    sizes = struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + sizes + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path, arr: np.ndarray, gz: bool = True):
    payload = idx_bytes(arr)
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if gz else payload)
    return path


def write_fashion_dir(directory, n_train=50, n_test=20, gz=True, size=(28, 28)):
    """Tiny synthetic Fashion-MNIST: balanced labels 0..9, random byte images."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, *size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels, gz)
    return directory


def write_csv(path, text: str):
    path.write_text(text)
    return f"csv:{path}"


def id_npz(path, n=120, classes=3):
    """An npz whose first feature is the sample id, so splits can be traced."""
    ids = np.arange(n, dtype=np.float64)
    x = np.stack([ids, np.sin(ids)], axis=1)
    np.savez(path, x=x, y=ids.astype(np.int64) % classes)
    return f"npz:{path}"


def ids(ds: Dataset, split: str) -> np.ndarray:
    return getattr(ds, f"x_{split}")[:, 0].astype(np.int64)


@pytest.fixture(scope="module")
def npz_ids(tmp_path_factory):
    return id_npz(tmp_path_factory.mktemp("npz") / "ids.npz")


# --------------------------------------------------------------- bundled sets


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_dataset_shapes_dtypes_classes(name):
    n, f, c = BUNDLED[name]
    ds = load_dataset(name)
    assert ds.name == name and ds.num_classes == c and ds.feature_shape == (f,)
    n_test, n_val = round(0.2 * n), round(0.2 * n)
    assert len(ds.x_test) == len(ds.y_test) == n_test
    assert len(ds.x_val) == len(ds.y_val) == n_val
    assert len(ds.x_train) == len(ds.y_train) == n - n_test - n_val
    for split in ("train", "val", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.dtype == np.float32 and x.shape[1:] == (f,)
        assert y.dtype == np.int32 and y.ndim == 1
        assert set(np.unique(y)) == set(range(c))  # stratified: every class present
        assert np.isfinite(x).all()


def test_digits_image_matches_flat():
    flat = load_dataset("digits", seed=3)
    img = load_dataset("digits", seed=3, image=True)
    assert img.feature_shape == (8, 8, 1) and img.x_train.shape[1:] == (8, 8, 1)
    np.testing.assert_array_equal(img.x_test.reshape(len(img.x_test), -1), flat.x_test)
    np.testing.assert_array_equal(img.y_train, flat.y_train)


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_image_rejected_for_tabular(name):
    with pytest.raises(ValueError, match=f"image=True.*'{name}' is tabular"):
        load_dataset(name, image=True)


def test_image_rejected_for_csv(tmp_path):
    spec = write_csv(tmp_path / "a.csv", "1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n")
    with pytest.raises(ValueError, match="tabular"):
        load_dataset(spec, image=True)


def test_digits_unstandardized_pixels_in_unit_interval():
    ds = load_dataset("digits", standardize=False)
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0


# ------------------------------------------------------------- standardisation


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_tabular_standardized_per_feature_on_train_only(name):
    raw = load_dataset(name, seed=1, standardize=False)
    std = load_dataset(name, seed=1)
    np.testing.assert_allclose(std.x_train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std.x_train.std(0), 1.0, atol=1e-4)
    mean, scale = raw.x_train.mean(0), raw.x_train.std(0)
    for split in ("train", "val", "test"):
        expect = (getattr(raw, f"x_{split}") - mean) / scale
        np.testing.assert_allclose(getattr(std, f"x_{split}"), expect, atol=1e-4)
    # Fitted on train only: held-out splits are not themselves centred exactly.
    assert not np.allclose(std.x_val.mean(0), 0.0, atol=1e-5)


def test_pixels_standardized_globally_on_train_only():
    raw = load_dataset("digits", seed=2, standardize=False)
    std = load_dataset("digits", seed=2)
    assert abs(float(std.x_train.mean())) < 1e-5
    assert abs(float(std.x_train.std()) - 1.0) < 1e-4
    mean, scale = raw.x_train.mean(), raw.x_train.std()
    np.testing.assert_allclose(std.x_test, (raw.x_test - mean) / scale, atol=1e-4)


def test_constant_feature_is_centred_not_blown_up(tmp_path):
    # Feature 0 is constant on train, differs on held-out rows only if they exist;
    # either way nothing may be scaled by 1/1e-6.
    rows = [f"5,{i},{i % 2}" for i in range(20)]
    ds = load_dataset(write_csv(tmp_path / "c.csv", "\n".join(rows)))
    for x in (ds.x_train, ds.x_val, ds.x_test):
        np.testing.assert_array_equal(x[:, 0], 0.0)


# -------------------------------------------------------------------- splits


def test_splits_disjoint_and_cover_everything(npz_ids):
    ds = load_dataset(npz_ids, standardize=False)
    train, val, test = (set(ids(ds, s)) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(120))
    for split in ("train", "val", "test"):  # labels travel with their samples
        np.testing.assert_array_equal(getattr(ds, f"y_{split}"), ids(ds, split) % 3)
        assert np.all(
            np.bincount(getattr(ds, f"y_{split}")) == len(ids(ds, split)) // 3
        )


def test_splits_seeded_and_deterministic(npz_ids):
    a, b = load_dataset(npz_ids, seed=7), load_dataset(npz_ids, seed=7)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y
    c = load_dataset(npz_ids, seed=8, standardize=False)
    assert set(ids(c, "test")) != set(ids(load_dataset(npz_ids, seed=7), "test"))


@settings(max_examples=30, deadline=None)
@given(
    val=st.floats(0.05, 0.45),
    test=st.floats(0.05, 0.45),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_sizes_follow_fractions(npz_ids, val, test, seed):
    ds = load_dataset(
        npz_ids, seed=seed, val_fraction=val, test_fraction=test, standardize=False
    )
    assert len(ds.x_test) == round(test * 120) and len(ds.x_val) == round(val * 120)
    all_ids = np.concatenate([ids(ds, s) for s in ("train", "val", "test")])
    np.testing.assert_array_equal(np.sort(all_ids), np.arange(120))


@settings(max_examples=30, deadline=None)
@given(
    arg=st.sampled_from(["val_fraction", "test_fraction"]),
    value=st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0)),
)
def test_fraction_outside_unit_interval_rejected(arg, value):
    with pytest.raises(ValueError, match=arg):
        load_dataset("iris", **{arg: value})


@settings(max_examples=30, deadline=None)
@given(val=st.floats(0.01, 0.99), test=st.floats(0.01, 0.99))
def test_fractions_summing_to_one_rejected(val, test):
    assume(val + test >= 1.0)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction"):
        load_dataset("iris", val_fraction=val, test_fraction=test)


@pytest.mark.parametrize("value", [True, "0.2", None])
def test_fraction_wrong_type_rejected(value):
    with pytest.raises(ValueError, match="val_fraction must be a number"):
        load_dataset("iris", val_fraction=value)


def test_fraction_too_small_for_classes():
    with pytest.raises(ValueError, match="test_fraction=0.01 gives 2 test samples"):
        load_dataset("iris", test_fraction=0.01)
    with pytest.raises(ValueError, match="val_fraction=0.01 gives 2 validation"):
        load_dataset("iris", val_fraction=0.01)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_bad_seed_rejected(seed):
    with pytest.raises(ValueError, match="seed must be"):
        load_dataset("iris", seed=seed)


# ------------------------------------------------------------------ max_train


def test_max_train_caps_splits_in_proportion(npz_ids):
    full = load_dataset(npz_ids, seed=4, standardize=False)  # 72 / 24 / 24
    small = load_dataset(npz_ids, seed=4, standardize=False, max_train=18)
    assert len(small.x_train) == 18
    assert len(small.x_val) == len(small.x_test) == 6  # ceil(24 * 18 / 72)
    for split in ("train", "val", "test"):  # a subset of the full splits
        assert set(ids(small, split)) <= set(ids(full, split))
        assert np.all(np.bincount(getattr(small, f"y_{split}"), minlength=3) > 0)
    np.testing.assert_array_equal(np.bincount(small.y_train), [6, 6, 6])
    again = load_dataset(npz_ids, seed=4, standardize=False, max_train=18)
    np.testing.assert_array_equal(again.x_train, small.x_train)


def test_max_train_above_train_size_is_no_op():
    a, b = load_dataset("wine", seed=5), load_dataset("wine", seed=5, max_train=10**6)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_test, b.x_test)


def test_max_train_keeps_at_least_one_per_class():
    ds = load_dataset("digits", max_train=10)
    assert len(ds.x_train) == 10 and len(ds.x_val) == len(ds.x_test) == 10
    for y in (ds.y_train, ds.y_val, ds.y_test):
        np.testing.assert_array_equal(np.sort(y), np.arange(10))


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_max_train_invalid(value):
    with pytest.raises(ValueError, match="max_train must be a positive integer"):
        load_dataset("iris", max_train=value)


def test_max_train_below_num_classes():
    with pytest.raises(ValueError, match="max_train=5 is below the number of classes"):
        load_dataset("digits", max_train=5)


# ------------------------------------------------------------------------- csv


def test_csv_with_header_and_remapped_labels(tmp_path):
    labels = [3, 7, 9]
    rows = [f"{i}.5,{-i},{labels[i % 3]}" for i in range(30)]
    spec = write_csv(tmp_path / "h.csv", "a,b,label\n" + "\n".join(rows) + "\n\n")
    ds = load_dataset(spec, standardize=False)
    assert ds.num_classes == 3 and ds.feature_shape == (2,) and ds.name == spec
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 30
    for split in ("train", "val", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        row = (x[:, 0] - 0.5).astype(int)
        np.testing.assert_array_equal(x[:, 1], -row)
        np.testing.assert_array_equal(y, row % 3)  # 3 -> 0, 7 -> 1, 9 -> 2


def test_csv_without_header(tmp_path):
    rows = [f"{i},{2 * i},{i % 2}" for i in range(20)]
    ds = load_dataset(write_csv(tmp_path / "n.csv", "\n".join(rows)), standardize=False)
    assert len(ds.x_train) + len(ds.x_val) + len(ds.x_test) == 20  # no row dropped
    np.testing.assert_array_equal(ds.x_train[:, 1], 2 * ds.x_train[:, 0])
    np.testing.assert_allclose(ds.y_train, ds.x_train[:, 0] % 2)


def test_csv_negative_and_float_integer_labels(tmp_path):
    rows = [f"{i},{-1.0 if i % 2 else 4.0}" for i in range(20)]
    ds = load_dataset(write_csv(tmp_path / "f.csv", "\n".join(rows)), standardize=False)
    np.testing.assert_array_equal(ds.y_train, (ds.x_train[:, 0] % 2 == 0).astype(int))


def test_relative_path_resolved_against_data_dir(tmp_path):
    (tmp_path / "r.csv").write_text("\n".join(f"{i},{i % 2}" for i in range(20)))
    ds = load_dataset("csv:r.csv", data_dir=str(tmp_path))
    assert ds.num_classes == 2


BAD_CSV = {
    "missing": (None, "no such CSV file"),
    "empty": ("", "empty CSV file"),
    "blank": ("\n\n  \n", "empty CSV file"),
    "header_only": ("a,b,label\n", "header but no data rows"),
    "one_column": ("1\n2\n", "need at least one feature column"),
    "ragged": ("1,2,0\n3,4,1\n5,1\n", "ragged rows: row 3 has 2 columns"),
    "non_numeric": ("a,b,y\n1,2,0\n3,x,1\n", "non-numeric cell 'x' in row 3, column 2"),
    "float_label": ("1,0\n2,1.5\n", "label 1.5 in row 2 is not an integer"),
    "nan_feature": ("1,0\n2,1\nnan,0\n", "NaN or infinite feature in row 3"),
    "inf_feature": ("1,0\ninf,1\n", "NaN or infinite feature in row 2"),
    "one_class": ("1,4\n2,4\n3,4\n", "found 1 class .label 4.; .* at least 2"),
    "tiny_class": (
        "".join(f"{i},0\n" for i in range(10)) + "1,1\n2,1\n",
        "class 1 has 2 sample.s.; a stratified split into 3 parts",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_csv_errors_name_file_and_problem(case, tmp_path):
    text, message = BAD_CSV[case]
    path = tmp_path / f"{case}.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + message):
        load_dataset(f"csv:{path}")


def test_csv_undecodable_file(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\x82")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": cannot read CSV"):
        load_dataset(f"csv:{path}")


# ------------------------------------------------------------------------- npz


def test_npz_flat(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 5))
    np.savez(tmp_path / "t.npz", x=x, y=np.repeat([10, 20], 20))
    ds = load_dataset(f"npz:{tmp_path / 't.npz'}")
    assert ds.feature_shape == (5,) and ds.num_classes == 2
    np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "image_shape"), [((4, 5), (4, 5, 1)), ((4, 5, 3), (4, 5, 3))]
)
def test_npz_images(tmp_path, shape, image_shape):
    x = np.random.default_rng(0).integers(0, 9, size=(30, *shape)).astype(np.uint8)
    np.savez(tmp_path / "i.npz", x=x, y=np.arange(30) % 3)
    flat = load_dataset(f"npz:{tmp_path / 'i.npz'}")
    img = load_dataset(f"npz:{tmp_path / 'i.npz'}", image=True)
    assert flat.feature_shape == (int(np.prod(shape)),)
    assert img.feature_shape == image_shape and img.x_val.shape[1:] == image_shape
    assert abs(float(img.x_train.mean())) < 1e-5  # pixels: one global mean/std


def test_npz_float_labels_and_bool_features(tmp_path):
    x = np.arange(60).reshape(30, 2) % 3 == 0
    np.savez(tmp_path / "b.npz", x=x, y=(np.arange(30) % 2).astype(np.float32))
    ds = load_dataset(f"npz:{tmp_path / 'b.npz'}", standardize=False)
    assert set(np.unique(ds.x_train)) <= {0.0, 1.0} and ds.num_classes == 2


def _write_bad_npz(path, case):
    n = np.arange(12)
    if case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(b"this is not a zip archive")
    elif case == "npy":
        with open(path, "wb") as f:
            np.save(f, n)
    elif case == "missing_keys":
        np.savez(path, features=n.reshape(6, 2))
    elif case == "length":
        np.savez(path, x=n.reshape(6, 2), y=n[:5])
    elif case == "x_1d":
        np.savez(path, x=n, y=n % 2)
    elif case == "y_2d":
        np.savez(path, x=n.reshape(6, 2), y=n.reshape(6, 2))
    elif case == "nan":
        x = n.reshape(6, 2).astype(float)
        x[4, 1] = np.nan
        np.savez(path, x=x, y=n[:6] % 2)
    elif case == "strings":
        np.savez(path, x=n.reshape(6, 2).astype(str), y=n[:6] % 2)
    elif case == "float_label":
        np.savez(path, x=n.reshape(6, 2), y=n[:6] / 4)
    elif case == "one_class":
        np.savez(path, x=n.reshape(6, 2), y=np.zeros(6, int))
    elif case == "no_samples":
        np.savez(path, x=np.zeros((0, 2)), y=np.zeros(0, int))


BAD_NPZ = {
    "missing": "no such NPZ file",
    "empty": "empty NPZ file",
    "garbage": "cannot read NPZ file",
    "npy": "not an NPZ archive",
    "missing_keys": "lacks array.s. 'x', 'y'",
    "length": "'x' has 6 samples but 'y' has 5",
    "x_1d": "'x' must have shape .n, ...., got .12,.",
    "y_2d": "'y' must have shape .n,.",
    "nan": "NaN or infinite feature in sample 4",
    "strings": "'x' must be numeric",
    "float_label": "label 0.25 in sample 1 is not an integer",
    "one_class": "found 1 class",
    "no_samples": "no samples",
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_npz_errors_name_file_and_problem(case, tmp_path):
    path = tmp_path / f"{case}.npz"
    _write_bad_npz(path, case)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + BAD_NPZ[case]):
        load_dataset(f"npz:{path}")


# ----------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["mnist", "Digits", "csv:", "npz", "json:a.json"])
def test_unknown_name_lists_valid_names(name):
    with pytest.raises(ValueError, match="unknown dataset") as info:
        load_dataset(name)
    for valid in (*DATASETS, "csv:PATH", "npz:PATH"):
        assert valid in str(info.value)


# ------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", sorted(IDX_CODES, key=lambda t: t.__name__))
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    arr = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", arr, gz))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # writeable copy, not a view of the file's bytes


def test_read_idx_accepts_pathlike_and_gz_by_content(tmp_path):
    # A gzipped file without .gz, and a plain one with it: content decides.
    labels = np.arange(5, dtype=np.uint8)
    np.testing.assert_array_equal(
        read_idx(write_idx(tmp_path / "plain_name", labels, gz=True)), labels
    )
    np.testing.assert_array_equal(
        read_idx(write_idx(tmp_path / "gz_name.gz", labels, gz=False)), labels
    )


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
BAD_IDX = {
    "bad_magic": (b"\x08\x03" + GOOD[2:], "bad IDX magic number 0x0803"),
    "bad_type": (
        b"\x00\x00\x07\x02" + GOOD[4:],
        "bad IDX magic number 0x00000702: unknown type code 0x07",
    ),
    "zero_dims": (b"\x00\x00\x08\x00", "bad IDX magic number 0x00000800: 0 dimensions"),
    "short": (b"\x00\x00", "truncated IDX file: 2 bytes"),
    "short_header": (GOOD[:9], "truncated IDX file: header of 2 dimensions"),
    "short_data": (GOOD[:-1], r"truncated IDX file: .*\(6 data bytes\).* only 5"),
    "extra_data": (GOOD + b"\x00", r"IDX size mismatch: .*\(6 data bytes\).* 7 bytes"),
    "bad_gzip": (gzip.compress(GOOD)[:-10], "corrupt or truncated gzip data"),
}


@pytest.mark.parametrize("case", sorted(BAD_IDX))
def test_read_idx_errors_name_file(case, tmp_path):
    payload, message = BAD_IDX[case]
    path = tmp_path / f"{case}-idx3-ubyte"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + message):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(ValueError, match="nope.gz: no such IDX file"):
        read_idx(tmp_path / "nope.gz")


# ----------------------------------------------------------------- fashion_mnist


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_synthetic_dir(tmp_path, gz):
    directory = write_fashion_dir(tmp_path / "fm", gz=gz)
    ds = load_dataset("fashion_mnist", data_dir=str(directory))
    assert ds.num_classes == 10 and ds.feature_shape == (784,)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (40, 10, 20)
    np.testing.assert_array_equal(np.sort(ds.y_val), np.arange(10))
    np.testing.assert_array_equal(np.sort(ds.y_test), np.sort(np.arange(20) % 10))
    img = load_dataset("fashion_mnist", data_dir=str(directory), image=True)
    assert img.x_train.shape == (40, 28, 28, 1) and img.feature_shape == (28, 28, 1)


def test_fashion_mnist_official_test_set_kept_in_order(tmp_path):
    directory = write_fashion_dir(tmp_path / "fm")
    ds = load_dataset("fashion_mnist", data_dir=str(directory), standardize=False)
    images = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_allclose(ds.x_test, images.reshape(20, -1) / 255.0, rtol=1e-6)
    assert ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    # test_fraction has no effect: the official test set is the test split.
    other = load_dataset("fashion_mnist", data_dir=str(directory), test_fraction=0.5)
    assert len(other.x_test) == 20


def test_fashion_mnist_max_train(tmp_path):
    directory = write_fashion_dir(tmp_path / "fm", n_train=200, n_test=100)
    ds = load_dataset("fashion_mnist", data_dir=str(directory), max_train=40)
    # train 160 -> 40 (ratio 1/4): val 40 -> 10, test 100 -> 25
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (40, 10, 25)
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 4))


def test_fashion_mnist_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist") as e:
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "absent"))
    assert "absent" in str(e.value) and "data_dir" in str(e.value)


def test_fashion_mnist_missing_file(tmp_path):
    directory = write_fashion_dir(tmp_path / "fm")
    os.remove(directory / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(
        ValueError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]; install it with"
    ):
        load_dataset("fashion_mnist", data_dir=str(directory))


def test_fashion_mnist_label_count_mismatch(tmp_path):
    directory = write_fashion_dir(tmp_path / "fm")
    path = directory / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.zeros(49, np.uint8))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": 49 labels for 50"):
        load_dataset("fashion_mnist", data_dir=str(directory))


def test_fashion_mnist_unseen_test_label(tmp_path):
    directory = write_fashion_dir(tmp_path / "fm")
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.full(20, 11, np.uint8))
    with pytest.raises(ValueError, match=r"test labels \[11\] never occur"):
        load_dataset("fashion_mnist", data_dir=str(directory))


def test_fashion_mnist_corrupt_file_named(tmp_path):
    directory = write_fashion_dir(tmp_path / "fm")
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(12)))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_dataset("fashion_mnist", data_dir=str(directory))


REAL_FASHION = all(
    os.path.isfile(os.path.join(FASHION_MNIST_DIR, f"{stem}.gz"))
    for stem in data._FASHION_FILES.values()
)


@pytest.mark.skipif(not REAL_FASHION, reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_real_smoke():
    ds = load_dataset("fashion_mnist", max_train=1000, image=True)
    assert ds.x_train.shape == (1000, 28, 28, 1) and ds.num_classes == 10
    # 48,000 train -> 1000: val 12,000 -> 250, official test 10,000 -> 209
    assert (len(ds.x_val), len(ds.x_test)) == (250, 209)
    np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 100))
    assert abs(float(ds.x_train.mean())) < 1e-4


# --------------------------------------------------------------------- doctest


def test_docstring_examples():
    result = doctest.testmod(data, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
