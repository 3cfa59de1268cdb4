"""MNIST from local files only: Keras' cached `mnist.npz` or the four idx(.gz) files.

Nothing is downloaded (keras.datasets.mnist.load_data() would): absent files are one clear error.
"""

from __future__ import annotations

import gzip
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from runegen.core.errors import DataError, reason

CLASS_NAMES = tuple(str(d) for d in range(10))
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def keras_datasets() -> Path:
    """Keras' cache of datasets, where keras.datasets.mnist.load_data() leaves mnist.npz:
    $KERAS_HOME/datasets where KERAS_HOME is set (keras/src/backend/config.py), else
    ~/.keras/datasets. Unlike Keras, an empty KERAS_HOME is taken as unset (Keras reads it as the
    current folder), and an unwritable home is not swapped for /tmp/.keras (only reading here)."""
    home = os.environ.get("KERAS_HOME")
    return (Path(home) if home else Path("~/.keras")).expanduser() / "datasets"


def find_default_mnist() -> Path:
    """`--data mnist`: Keras' mnist.npz in its cache, else a folder mnist/ there of the idx files."""
    folder = keras_datasets()
    for path in (folder / "mnist.npz", folder / "mnist"):
        if path.exists() and looks_like_mnist(path):
            return path
    raise DataError(f"mnist: no MNIST in {folder}: put mnist.npz there, or the four idx files in "
                    f"{folder / 'mnist'} (nothing is downloaded); or give the path of an mnist.npz or of "
                    "a folder of idx files")


def looks_like_mnist(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".npz"
    return _idx_file(path, IDX_STEMS[0]) is not None


def load_mnist(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train and test splits together: uint8 (N, 28, 28) and int32 labels."""
    try:
        if path.is_file():
            _check_zip(path)
            with np.load(path) as archive:
                parts = [archive[key] for key in ("x_train", "y_train", "x_test", "y_test")]
        else:
            parts = [_read_idx(path, stem) for stem in IDX_STEMS]
    except ValueError as error:  # numpy's advice for pickled data (allow_pickle) is not for a dataset
        why = "pickled objects, not arrays" if "pickle" in str(error) else reason(error)
        raise DataError(f"{path}: unreadable MNIST files ({why})") from None
    except (OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path}: unreadable MNIST files ({reason(error)})") from None
    shapes = [part.shape for part in parts]
    if (any(part.ndim != 3 or part.shape[1:] != (28, 28) for part in parts[0::2])
            or any(part.ndim != 1 for part in parts[1::2])
            or [len(part) for part in parts[0::2]] != [len(part) for part in parts[1::2]]):
        raise DataError(f"{path}: MNIST arrays have unexpected shapes {shapes} (expected (N, 28, 28), (N,), "
                        "(M, 28, 28), (M,))")
    if not len(parts[0]):
        raise DataError(f"{path}: its MNIST training set holds no images")
    if not all(np.issubdtype(part.dtype, np.integer) for part in parts[1::2]):
        raise DataError(f"{path}: MNIST labels must be digits 0..9, not {parts[1].dtype}")
    images = np.concatenate([parts[0], parts[2]])
    labels = np.concatenate([parts[1], parts[3]]).astype(np.int32)
    if images.dtype.kind not in "iu" or images.min() < 0 or images.max() > 255:  # floats: their scale is a guess
        raise DataError(f"{path}: MNIST pixels must be whole numbers in 0..255, not {images.dtype} "
                        f"in {images.min()}..{images.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: MNIST labels must be digits 0..9, found {labels.min()}..{labels.max()}")
    return images.astype(np.uint8), labels


def _check_zip(path: Path) -> None:
    """An .npz is a zip file of arrays: anything else is said so (numpy read text as a pickle and
    refused "pickled objects", and handed back one .npy array, a TypeError)."""
    with open(path, "rb") as file:
        magic = file.read(6)
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):  # numpy's own test for a zip (np.load)
        kind = "is empty" if not magic else "is one .npy array" if magic == b"\x93NUMPY" else "is not a zip file"
        raise DataError(f"{path}: not an .npz archive (a zip file of arrays, as numpy.savez writes): it {kind}")


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_idx(folder: Path, stem: str) -> np.ndarray:
    """The idx format: 2 zero bytes, a type byte (0x08 = uint8), a rank byte, big-endian dims, data."""
    path = _idx_file(folder, stem)
    if path is None:
        raise OSError(f"{stem} missing in {folder}")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError, zlib.error) as error:  # a corrupt gzip's own words do not name the file
        raise ValueError(f"{path.name}: {reason(error)}") from None
    if raw[:2] == b"\x1f\x8b":
        raise ValueError(f"{path.name} is gzip-compressed: name it {path.name}.gz")
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path.name} is not a uint8 idx file")
    rank, expected_rank = raw[3], 3 if "images" in stem else 1
    if rank != expected_rank:
        raise ValueError(f"{path.name}: an idx file of rank {rank}, where {stem} has rank {expected_rank}")
    if len(raw) < 4 + 4 * rank:
        raise ValueError(f"{path.name}: its header is cut short ({len(raw)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=rank, offset=4))
    data, size = np.frombuffer(raw, np.uint8, offset=4 + 4 * rank), math.prod(dims)  # Python ints: no overflow
    if data.size != size:  # numpy's "cannot reshape array of size 7832 into shape ..."
        raise ValueError(f"{path.name}: its header says {' x '.join(f'{d:,}' for d in dims)} = {size:,} "
                         f"bytes of data, the file holds {data.size:,} (truncated or padded?)")
    return data.reshape(dims)
