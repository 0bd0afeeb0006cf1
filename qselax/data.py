"""Datasets for qselax, loaded without network access.

:func:`load_dataset` returns a :class:`Dataset`: seeded, stratified train/val/test
splits with float32 features and int32 labels ``0..C-1``.  Sources:

* scikit-learn's bundled sets ``digits``, ``iris``, ``wine`` and ``breast_cancer``;
* ``fashion_mnist`` from the Debian package ``dataset-fashion-mnist`` (installed in
  :data:`FASHION_MNIST_DIR`), or any directory holding the four standard IDX files;
* a user's file, ``csv:PATH`` or ``npz:PATH``.

Shape words: ``N`` samples in a split, ``F`` flat features, ``H, W, C`` image height,
width and channels.  Features are ``(N, F)``, or ``(N, H, W, C)`` when ``image=True``.

Example:
    >>> ds = load_dataset("iris", seed=0)
    >>> ds.x_train.shape, ds.x_val.shape, ds.x_test.shape, ds.num_classes
    ((90, 4), (30, 4), (30, 4), 3)
"""

from __future__ import annotations

import csv
import gzip
import math
import numbers
import os
import struct
import zipfile
import zlib
from typing import NamedTuple

import numpy as np
from sklearn import datasets as _skdatasets
from sklearn.model_selection import train_test_split

__all__ = ["DATASETS", "FASHION_MNIST_DIR", "Dataset", "load_dataset", "read_idx"]

DATASETS: tuple[str, ...] = ("digits", "iris", "wine", "breast_cancer", "fashion_mnist")
"""Built-in dataset names; ``"csv:PATH"`` and ``"npz:PATH"`` load a user's file."""

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` installs the gzipped IDX files."""

# Standard Fashion-MNIST (and MNIST) file names, without the optional ".gz".
_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_FASHION_HINT = (
    "install it with `apt-get install dataset-fashion-mnist` or pass "
    "data_dir=<directory with the four IDX files>"
)

# IDX type codes (third magic byte); multi-byte types are big-endian per the spec.
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_STD_FLOOR = 1e-6
_TABULAR_LOADERS = {
    "iris": _skdatasets.load_iris,
    "wine": _skdatasets.load_wine,
    "breast_cancer": _skdatasets.load_breast_cancer,
}


class Dataset(NamedTuple):
    """Train/val/test splits of one classification task.

    Attributes:
        x_train: ``(N_train, *feature_shape)`` float32 features.
        y_train: ``(N_train,)`` int32 labels in ``0..num_classes-1``.
        x_val: ``(N_val, *feature_shape)`` float32 features.
        y_val: ``(N_val,)`` int32 labels.
        x_test: ``(N_test, *feature_shape)`` float32 features.
        y_test: ``(N_test,)`` int32 labels.
        num_classes: number of classes ``C``.
        name: the name the data set was loaded by (e.g. ``"digits"``, ``"csv:a.csv"``).
        feature_shape: shape of one sample: ``(F,)``, or ``(H, W, C)`` for images.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str
    feature_shape: tuple[int, ...]


class _Source(NamedTuple):
    """Raw data before splitting: any numeric dtype, labels not yet remapped."""

    x: np.ndarray  # (N, ...) samples
    y: np.ndarray  # (N,) integer labels, any values
    image_shape: tuple[int, ...] | None  # (H, W, C) when samples are images
    scale: float  # raw values are divided by this first (pixels to [0, 1])
    x_test: np.ndarray | None = None  # official test set, if the source has one
    y_test: np.ndarray | None = None


# --------------------------------------------------------------------------- IDX


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzipped or plain.

    The format is two zero bytes, a type code (``0x08`` ubyte, ``0x09`` byte,
    ``0x0B`` short, ``0x0C`` int, ``0x0D`` float, ``0x0E`` double), the number of
    dimensions ``D``, ``D`` big-endian uint32 sizes, then the row-major data in
    big-endian order.  Gzip is recognised by its magic bytes, not the file name.

    Args:
        path: the file.

    Returns:
        An array of shape ``(d_1, ..., d_D)`` in native byte order, e.g. ``(N, 28, 28)``
        uint8 for image files and ``(N,)`` uint8 for label files.

    Raises:
        ValueError: naming the file, if it is missing, unreadable, not valid gzip,
            has a bad magic number, is truncated, or holds more data than its header
            declares.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(suffix=".idx") as f:
        ...     _ = f.write(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9]))
        ...     f.flush()
        ...     read_idx(f.name)
        array([7, 8, 9], dtype=uint8)
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such IDX file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read IDX file: {e}") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data: {e}") from e
    if len(raw) < 4:
        raise ValueError(
            f"{path}: truncated IDX file: {len(raw)} bytes, the magic number needs 4"
        )
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}: "
            "it must start with two zero bytes"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_TYPES)
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}: "
            f"unknown type code 0x{code:02x} (known: {known})"
        )
    if ndim == 0:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()}: 0 dimensions"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX file: header of {ndim} dimensions needs "
            f"{header} bytes, file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    count = math.prod(shape)
    expected, got = count * dtype.itemsize, len(raw) - header
    if got < expected:
        raise ValueError(
            f"{path}: truncated IDX file: header declares shape {shape} of "
            f"{dtype.name} ({expected} data bytes) but only {got} bytes follow"
        )
    if got > expected:
        raise ValueError(
            f"{path}: IDX size mismatch: header declares shape {shape} of "
            f"{dtype.name} ({expected} data bytes) but {got} bytes follow"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header)
    # astype copies: the result is writeable and in native byte order.
    return data.reshape(shape).astype(dtype.newbyteorder("="))


# ---------------------------------------------------------------------- sources


def _load_sklearn(name: str) -> _Source:
    if name == "digits":
        digits = _skdatasets.load_digits()
        # Pixels are 0..16; scaling makes standardize=False data comparable to
        # fashion_mnist's [0, 1] pixels.
        return _Source(digits.images, digits.target, (8, 8, 1), 16.0)
    bunch = _TABULAR_LOADERS[name]()
    return _Source(bunch.data, bunch.target, None, 1.0)


def _find_idx(directory: str, stem: str) -> str | None:
    for fname in (stem + ".gz", stem):
        path = os.path.join(directory, fname)
        if os.path.isfile(path):
            return path
    return None


def _load_fashion_mnist(data_dir: str | None) -> _Source:
    directory = os.path.expanduser(data_dir) if data_dir else FASHION_MNIST_DIR
    if not os.path.isdir(directory):
        raise ValueError(
            f"fashion_mnist: directory {directory} does not exist; {_FASHION_HINT}"
        )
    paths = {key: _find_idx(directory, stem) for key, stem in _FASHION_FILES.items()}
    missing = [f"{_FASHION_FILES[k]}[.gz]" for k, p in paths.items() if p is None]
    if missing:
        raise ValueError(
            f"fashion_mnist: {directory} lacks {', '.join(missing)}; {_FASHION_HINT}"
        )
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        xpath, ypath = paths[f"x_{split}"], paths[f"y_{split}"]
        if x.ndim != 3:
            raise ValueError(
                f"{xpath}: images must have shape (N, H, W), got {x.shape}"
            )
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{ypath}: labels must be integers of shape (N,), "
                f"got {y.dtype.name} {y.shape}"
            )
        if len(x) != len(y):
            raise ValueError(f"{ypath}: {len(y)} labels for {len(x)} images in {xpath}")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise ValueError(
            f"{paths['x_test']}: image size {arrays['x_test'].shape[1:]} differs from "
            f"{arrays['x_train'].shape[1:]} in {paths['x_train']}"
        )
    height, width = arrays["x_train"].shape[1:]
    # Byte pixels go to [0, 1]; other IDX types are taken as already scaled.
    scale = 255.0 if arrays["x_train"].dtype == np.uint8 else 1.0
    return _Source(
        arrays["x_train"],
        arrays["y_train"],
        (height, width, 1),
        scale,
        arrays["x_test"],
        arrays["y_test"],
    )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _labels_from_floats(path: str, labels: np.ndarray, rows: list[int]) -> np.ndarray:
    """Checks float labels are whole numbers; ``rows`` names them in messages."""
    bad = ~np.isfinite(labels) | (labels != np.round(labels))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{path}: label {labels[i].item()} in {rows[i]} is not an integer "
            "(the last column must hold integer class labels)"
        )
    return labels.astype(np.int64)


def _load_csv(path: str) -> _Source:
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such CSV file")
    try:
        with open(path, newline="") as f:
            # Blank lines (e.g. a trailing newline) carry no sample; keep line numbers.
            rows = [
                (line, row)
                for line, row in enumerate(csv.reader(f), start=1)
                if any(cell.strip() for cell in row)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: cannot read CSV file: {e}") from e
    if not rows:
        raise ValueError(f"{path}: empty CSV file")
    if not all(_is_number(cell) for cell in rows[0][1]):
        rows = rows[1:]  # a non-numeric first row is a header
        if not rows:
            raise ValueError(f"{path}: CSV file has a header but no data rows")
    first_line, first_row = rows[0]
    ncols = len(first_row)
    if ncols < 2:
        raise ValueError(
            f"{path}: row {first_line} has {ncols} column; need at least one feature "
            "column and a final label column"
        )
    values = np.empty((len(rows), ncols), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        if len(row) != ncols:
            raise ValueError(
                f"{path}: ragged rows: row {line} has {len(row)} columns, "
                f"row {first_line} has {ncols}"
            )
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}: non-numeric cell {cell!r} in row {line}, column {j + 1}"
                ) from None
    lines = [f"row {line}" for line, _ in rows]
    x = values[:, :-1]
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise ValueError(
            f"{path}: NaN or infinite feature in {lines[int(np.argmin(finite))]}"
        )
    y = _labels_from_floats(path, values[:, -1], lines)
    return _Source(x, y, None, 1.0)


def _load_npz(path: str) -> _Source:
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such NPZ file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty NPZ file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: cannot read NPZ file: {e}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an NPZ archive (np.savez writes one)")
    with archive:
        missing = [k for k in ("x", "y") if k not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: NPZ file lacks array(s) {', '.join(map(repr, missing))} "
                f"(has {sorted(archive.files)}); expected 'x' (n, ...) and 'y' (n,)"
            )
        try:
            x, y = archive["x"], archive["y"]
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path}: cannot read arrays 'x', 'y': {e}") from e
    if x.ndim < 2:
        raise ValueError(f"{path}: 'x' must have shape (n, ...), got {x.shape}")
    if y.ndim != 1:
        raise ValueError(f"{path}: 'y' must have shape (n,), got {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{path}: 'x' has {len(x)} samples but 'y' has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{path}: no samples")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{path}: 'x' must be numeric, got dtype {x.dtype}")
    if np.iscomplexobj(x):
        raise ValueError(f"{path}: 'x' must be real, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if not finite.all():
            raise ValueError(
                f"{path}: NaN or infinite feature in sample {int(np.argmin(finite))}"
            )
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        y = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating):
        y = _labels_from_floats(path, y, [f"sample {i}" for i in range(len(y))])
    else:
        raise ValueError(f"{path}: 'y' must hold integer labels, got dtype {y.dtype}")
    # (n, H, W) and (n, H, W, C) arrays are images; other ranks are flattened.
    image_shape = {3: (*x.shape[1:], 1), 4: x.shape[1:]}.get(x.ndim)
    return _Source(x, y, image_shape, 1.0)


def _resolve_path(spec: str, data_dir: str | None) -> str:
    path = os.path.expanduser(spec)
    if data_dir and not os.path.isabs(path):
        path = os.path.join(os.path.expanduser(data_dir), path)
    return path


def _load_source(name: str, data_dir: str | None) -> tuple[_Source, str]:
    """The raw data of ``name`` and the word that names it in error messages."""
    if name in _TABULAR_LOADERS or name == "digits":
        return _load_sklearn(name), name
    if name == "fashion_mnist":
        return _load_fashion_mnist(data_dir), name
    kind, _, spec = name.partition(":")
    if kind in ("csv", "npz") and spec:
        path = _resolve_path(spec, data_dir)
        loader = _load_csv if kind == "csv" else _load_npz
        return loader(path), path
    raise ValueError(
        f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}, "
        "'csv:PATH', 'npz:PATH'"
    )


# ------------------------------------------------------------------- splitting


def _check_fraction(arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{arg} must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{arg} must be in (0, 1), got {value!r}")
    return float(value)


def _check_size(arg: str, fraction: float, size: int, what: str, classes: int) -> None:
    if size < classes:
        raise ValueError(
            f"{arg}={fraction} gives {size} {what} samples for {classes} classes; "
            "a stratified split needs at least one per class"
        )


def _stratified_split(
    y: np.ndarray, n_hold: int, rng: np.random.RandomState, source: str, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, hold)`` of a stratified split holding out ``n_hold``."""
    try:
        keep, hold = train_test_split(
            np.arange(len(y)), test_size=n_hold, stratify=y, random_state=rng
        )
    except ValueError as e:
        raise ValueError(f"{source}: cannot make a stratified {what} split: {e}") from e
    return keep, hold


def _stratified_subsample(
    y: np.ndarray, k: int, rng: np.random.RandomState
) -> np.ndarray:
    """Indices of a seeded, class-proportional subsample of size ``k`` of ``y``.

    Written out rather than via ``train_test_split`` because that one refuses classes
    with one member and complements smaller than the number of classes, both of which
    are fine here.
    """
    n = len(y)
    if k >= n:
        return np.arange(n)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts * (k / n)
    take = np.floor(quota).astype(np.int64)
    # Largest remainders get the leftover slots so the class sizes sum to k.
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: k - int(take.sum())]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(inverse == c))[:t] for c, t in enumerate(take)
    ]
    return rng.permutation(np.concatenate(chosen))


def _standardize(splits: list[np.ndarray], per_feature: bool) -> list[np.ndarray]:
    """Standardises every split with statistics of ``splits[0]`` (train) only."""
    train = splits[0]
    axis = 0 if per_feature else None
    mean = train.mean(axis=axis, dtype=np.float64)
    var = np.square(train - mean.astype(np.float32)).mean(axis=axis, dtype=np.float64)
    std = np.sqrt(var)
    # A train-constant feature is only centred: dividing by a tiny floor would blow any
    # held-out deviation up by 1e6.
    std = np.where(std < _STD_FLOOR, 1.0, std)
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    return [((s - mean) / std).astype(np.float32) for s in splits]


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    max_train: int | None = None,
    image: bool = False,
    data_dir: str | None = None,
    standardize: bool = True,
) -> Dataset:
    """Loads a classification data set as seeded, stratified train/val/test splits.

    Splitting: the test split (``round(test_fraction * N)`` samples) is drawn first,
    then the validation split (``round(val_fraction * N)``, so both fractions are of
    the whole set) from the rest, each with ``sklearn``'s ``train_test_split``
    stratified on the labels and driven by one ``RandomState(seed)``.
    ``fashion_mnist`` keeps its official 10,000-image test set, ignores
    ``test_fraction`` and takes ``round(val_fraction * 60000)`` validation images from
    the official training set.

    Subsampling: with ``max_train`` below the training split's size ``n``, the training
    split is cut to ``max_train`` samples and validation and test are cut by the same
    ratio, to ``max(C, ceil(size * max_train / n))`` samples each; every cut is
    class-proportional and seeded, and taken from the full splits, so the samples kept
    are a subset of those without ``max_train``.

    Features: labels are remapped to ``0..C-1`` in sorted order.  Pixels are scaled to
    ``[0, 1]`` (``digits`` by 16, byte Fashion-MNIST images by 255).  With
    ``standardize``, statistics are fitted on the training split only and applied to
    all three: pixel data (``digits``, ``fashion_mnist``, image-shaped npz) uses one
    global mean and std, since pixels share a scale and always-blank border pixels
    have no per-pixel spread; tabular data uses per-feature mean and std, where a
    feature with train std below 1e-6 is centred but not scaled.

    Args:
        name: one of :data:`DATASETS`, ``"csv:PATH"`` (numeric feature columns, the
            last column an integer label, optional header row) or ``"npz:PATH"``
            (arrays ``x`` of shape ``(N, ...)`` and ``y`` of shape ``(N,)``).
        seed: seed of every split and subsample.
        val_fraction: fraction of the samples in the validation split, in (0, 1).
        test_fraction: fraction of the samples in the test split, in (0, 1); the two
            fractions must sum to less than 1.
        max_train: optional cap on the training split (at least the number of
            classes); validation and test shrink in proportion.
        image: return features of shape ``(H, W, C)``: ``(8, 8, 1)`` for ``digits``,
            ``(28, 28, 1)`` for ``fashion_mnist``, ``(H, W[, C])`` npz images.
        data_dir: directory of the Fashion-MNIST IDX files (default
            :data:`FASHION_MNIST_DIR`); relative ``csv:``/``npz:`` paths are taken
            from it.  The bundled scikit-learn sets ignore it.
        standardize: standardise features as described above.

    Returns:
        A :class:`Dataset` with features ``(N, F)`` (or ``(N, H, W, C)``) float32 and
        labels ``(N,)`` int32.

    Raises:
        ValueError: for an unknown name (listing the valid ones), a bad argument
            (named), ``image=True`` on tabular data, or an unreadable or malformed
            file (named, with the problem).

    Example:
        >>> ds = load_dataset("digits", seed=0, image=True)
        >>> ds.x_train.shape, ds.y_train.dtype, ds.num_classes
        ((1079, 8, 8, 1), dtype('int32'), 10)
        >>> bool(abs(ds.x_train.mean()) < 1e-4)
        True
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1, got "
            f"{val_fraction} + {test_fraction}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    if max_train is not None and (
        isinstance(max_train, bool)
        or not isinstance(max_train, numbers.Integral)
        or max_train < 1
    ):
        raise ValueError(
            f"max_train must be a positive integer or None, got {max_train!r}"
        )

    src, source = _load_source(name, data_dir)
    if image and src.image_shape is None:
        raise ValueError(
            f"image=True needs image data, but {name!r} is tabular; images come from "
            "digits, fashion_mnist, or an npz whose 'x' has shape (n, H, W[, C])"
        )
    if len(src.y) == 0:
        raise ValueError(f"{source}: no samples")

    classes, y = np.unique(src.y, return_inverse=True)
    num_classes = len(classes)
    if num_classes < 2:
        raise ValueError(
            f"{source}: found {num_classes} class (label {classes[0]}); "
            "classification needs at least 2"
        )
    has_test = src.x_test is not None
    y_test_official = None
    if has_test:
        unseen = np.setdiff1d(src.y_test, classes)
        if unseen.size:
            raise ValueError(
                f"{source}: test labels {unseen.tolist()} never occur in training data"
            )
        y_test_official = np.searchsorted(classes, src.y_test)
    # Every class needs one sample per split cut from the pool (train, val, and test
    # unless official); with fewer, sklearn's stratification fails opaquely.
    pool_splits = 2 if has_test else 3
    counts = np.bincount(y, minlength=num_classes)
    if counts.min() < pool_splits:
        c = int(np.argmin(counts))
        raise ValueError(
            f"{source}: class {classes[c]} has {counts[c]} sample(s); a stratified "
            f"split into {pool_splits} parts needs at least {pool_splits} per class"
        )

    n = len(y)
    n_val = round(val_fraction * n)
    _check_size("val_fraction", val_fraction, n_val, "validation", num_classes)
    n_test = 0 if has_test else round(test_fraction * n)
    if not has_test:
        _check_size("test_fraction", test_fraction, n_test, "test", num_classes)
    if n - n_val - n_test < num_classes:
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} leave "
            f"{n - n_val - n_test} of {n} samples for training, fewer than "
            f"{num_classes} classes"
        )

    rng = np.random.RandomState(seed)
    pool = np.arange(n)
    test_idx = None
    if not has_test:
        pool, test_idx = _stratified_split(y, n_test, rng, source, "test")
    keep, hold = _stratified_split(y[pool], n_val, rng, source, "validation")
    train_idx, val_idx = pool[keep], pool[hold]
    if has_test:
        test_idx = np.arange(len(y_test_official))
        test_y = y_test_official
    else:
        test_y = y[test_idx]

    if max_train is not None and max_train < len(train_idx):
        if max_train < num_classes:
            raise ValueError(
                f"max_train={max_train} is below the number of classes "
                f"({num_classes}); a stratified subsample needs one per class"
            )
        ratio = max_train / len(train_idx)

        def cap(size: int) -> int:
            return max(num_classes, math.ceil(size * ratio))

        train_idx = train_idx[_stratified_subsample(y[train_idx], max_train, rng)]
        val_idx = val_idx[_stratified_subsample(y[val_idx], cap(len(val_idx)), rng)]
        keep_test = _stratified_subsample(test_y, cap(len(test_idx)), rng)
        test_idx, test_y = test_idx[keep_test], test_y[keep_test]

    feature_shape = tuple(src.image_shape) if image else (math.prod(src.x.shape[1:]),)
    x_test_all = src.x_test if has_test else src.x

    def features(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        # Index before converting so a large uint8 set is never copied whole as float.
        out = x[idx].reshape(len(idx), *feature_shape).astype(np.float32)
        if src.scale != 1.0:
            out /= np.float32(src.scale)
        return out

    splits = [
        features(src.x, train_idx),
        features(src.x, val_idx),
        features(x_test_all, test_idx),
    ]
    if not all(np.isfinite(s).all() for s in splits):
        raise ValueError(f"{source}: features overflow float32")
    if standardize:
        splits = _standardize(splits, per_feature=src.image_shape is None)
    x_train, x_val, x_test = splits
    return Dataset(
        x_train=x_train,
        y_train=y[train_idx].astype(np.int32),
        x_val=x_val,
        y_val=y[val_idx].astype(np.int32),
        x_test=x_test,
        y_test=test_y.astype(np.int32),
        num_classes=int(num_classes),
        name=name,
        feature_shape=feature_shape,
    )
