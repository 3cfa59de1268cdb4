"""MNIST from local files (runegen/data/mnist.py): Keras' cached mnist.npz or the four idx(.gz)
files, never downloaded; files that are not MNIST are one clear error."""

import gzip

import numpy as np
import pytest

from runegen.core.errors import DataError
from runegen.data import load_dataset


def fake_mnist(count=30, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
            rng.permutation(np.arange(count) % 10).astype(np.uint8))  # every digit, from 10 images on


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_mnist_npz(tmp_path):
    (x_train, y_train), (x_test, y_test) = fake_mnist(20, 0), fake_mnist(10, 1)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load_dataset(str(tmp_path / "mnist.npz"))
    assert data.images.shape == (30, 28, 28, 1) and data.name == "mnist"
    np.testing.assert_allclose(data.images[0, :, :, 0], (x_train[0] - 127.5) / 127.5, atol=1e-6)
    assert data.labels.tolist() == np.concatenate([y_train, y_test]).tolist()


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    (x_train, y_train), (x_test, y_test) = fake_mnist(12, 0), fake_mnist(5, 1)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x_train, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y_train, gz)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", x_test, gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", y_test, gz)
    data = load_dataset(str(tmp_path))
    assert len(data) == 17 and data.class_names == tuple("0123456789")
    assert data.labels[-1] == y_test[-1]


def test_mnist_is_looked_for_in_keras_cache_where_keras_home_puts_it(tmp_path, monkeypatch):
    """`--data mnist` looked in ~/.keras/datasets only, though Keras caches in $KERAS_HOME where
    it is set; the message names the folder looked in and both layouts it takes."""
    import re

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    for folder in (tmp_path / "home" / ".keras" / "datasets", tmp_path / "kh" / "datasets"):
        with pytest.raises(DataError, match=f"^mnist: no MNIST in {re.escape(str(folder))}: put mnist.npz there, "
                                            f"or the four idx files in {re.escape(str(folder / 'mnist'))}"):
            load_dataset("mnist")
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    datasets = tmp_path / "kh" / "datasets"
    (datasets / "mnist").mkdir(parents=True)
    x, y = fake_mnist(6)
    for stem, array in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                        ("t10k-images-idx3-ubyte", x), ("t10k-labels-idx1-ubyte", y)):
        write_idx(datasets / "mnist" / f"{stem}.gz", array, gz=True)
    assert len(load_dataset("mnist")) == 12
    np.savez(datasets / "mnist.npz", x_train=x[:2], y_train=y[:2], x_test=x[:1], y_test=y[:1])
    assert len(load_dataset("mnist")) == 3  # Keras' own file first


def test_truncated_idx_is_a_usage_error(tmp_path):
    x, y = fake_mnist(4)
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\0\0\x08")
    with pytest.raises(DataError, match="unreadable MNIST"):
        load_dataset(str(tmp_path))


def test_idx_files_that_do_not_hold_what_their_header_says(tmp_path):
    """Each was numpy's "cannot reshape array of size 7832 into shape (20,28,28)", or, for an
    empty set, its shapes called unexpected."""
    x, y = fake_mnist(4)
    for stem, array in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                        ("t10k-images-idx3-ubyte", x), ("t10k-labels-idx1-ubyte", y)):
        write_idx(tmp_path / stem, array)
    images = tmp_path / "train-images-idx3-ubyte"
    whole = images.read_bytes()
    for data, message in ((whole[:-100], "its header says 4 x 28 x 28 = 3,136 bytes of data, the file holds 3,036"),
                          (whole + b"\0", "the file holds 3,137"),
                          (gzip.compress(whole), "is gzip-compressed: name it train-images-idx3-ubyte.gz"),
                          (bytes([0, 0, 8, 1]) + whole[4:], "an idx file of rank 1, where train-images-idx3-ubyte has rank 3"),
                          (whole[:10], r"its header is cut short \(10 bytes\)"),
                          (whole[:4] + b"\xff" * 12, "4,294,967,295 x 4,294,967,295 x 4,294,967,295 = 79,228,")):
        images.write_bytes(data)
        with pytest.raises(DataError, match=message):
            load_dataset(str(tmp_path))
    write_idx(images, x[:0])
    write_idx(tmp_path / "train-labels-idx1-ubyte", y[:0])
    with pytest.raises(DataError, match="its MNIST training set holds no images"):
        load_dataset(str(tmp_path))


def test_mnist_files_that_are_not_mnist(tmp_path):
    """Corrupt gzip (a traceback before), labels that are no digit (an IndexError in the
    classifier, a silently dropped image in the preview), float pixels (cast to near black), and
    nothing but blank images (refused in a folder, trained on from an npz)."""
    x, y = fake_mnist(4)
    (tmp_path / "idx").mkdir()
    for stem, array in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                        ("t10k-images-idx3-ubyte", x), ("t10k-labels-idx1-ubyte", y)):
        write_idx(tmp_path / "idx" / f"{stem}.gz", array, gz=True)
    gz = tmp_path / "idx" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:12] + bytes(b ^ 0x5A for b in gz.read_bytes()[12:]))
    with pytest.raises(DataError, match=r"unreadable MNIST files \(train-images-idx3-ubyte.gz: "):  # named
        load_dataset(str(tmp_path / "idx"))
    # not a zip of arrays: "pickled objects, not arrays" for text, a TypeError traceback for one .npy array
    (tmp_path / "text.npz").write_text("hello\n")
    np.save(tmp_path / "one.npy", x)
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    for name, kind in (("text", "is not a zip file"), ("one", "is one .npy array"), ("empty", "is empty")):
        with pytest.raises(DataError, match=f"{name}.npz: not an .npz archive .*: it {kind}$"):
            load_dataset(str(tmp_path / f"{name}.npz"))
    for name, images, labels, message in (("labels.npz", x, np.where(y == y[0], 12, y), "labels must be digits 0..9"),
                                          ("floats.npz", x / 255.0, y, "pixels must be whole numbers in 0..255"),
                                          ("blank.npz", np.zeros_like(x), y, "every image is one flat colour")):
        np.savez(tmp_path / name, x_train=images, y_train=labels, x_test=images, y_test=labels)
        with pytest.raises(DataError, match=message):
            load_dataset(str(tmp_path / name))
    for name, arrays, message in (("strings.npz", (x, y.astype(str), x, y), "labels must be digits"),
                                  ("columns.npz", (x, np.stack([y, y], 1), x, y), "unexpected shapes"),
                                  ("ranks.npz", (x, y, x[0], y), "unexpected shapes")):
        np.savez(tmp_path / name, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))
        with pytest.raises(DataError, match=message):  # each was a ValueError from numpy
            load_dataset(str(tmp_path / name))
    np.savez(tmp_path / "wide.npz", x_train=x.astype(np.int64), y_train=y, x_test=x, y_test=y)  # whole numbers
    assert len(load_dataset(str(tmp_path / "wide.npz"))) == 2 * len(x)


def test_an_mnist_file_without_some_digits_has_the_classes_it_holds(tmp_path, capsys):
    """An .npz of the digits 0-2 claimed ten classes: seven empty preview rows, and class coverage
    that could never reach 10 of 10. Image folders leave an empty class out; so does MNIST now."""
    images, _ = fake_mnist(6)
    labels = np.array([2, 0, 7, 2, 0, 7], np.uint8)
    np.savez(tmp_path / "three.npz", x_train=images[:4], y_train=labels[:4], x_test=images[4:], y_test=labels[4:])
    data = load_dataset(str(tmp_path / "three.npz"))
    assert data.class_names == ("0", "2", "7") and data.labels.tolist() == [1, 0, 2, 1, 0, 2]
    assert "holds the digits 0, 2, 7 only: 3 classes" in capsys.readouterr().err
