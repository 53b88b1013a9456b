"""cnnkit.data.formats: every on-disk format read back exactly, every corruption refused with a clear message."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import shutil
import struct
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
from cnnkit_plugins.cifar10 import CIFAR10_SPEC
from cnnkit_plugins.mnist import MNIST_SPEC

from cnnkit.data.formats import (
    CifarBatchesSource,
    IdxSource,
    ImageArrays,
    ImageSetSpec,
    NpzSource,
    Source,
    default_data_dir,
    describe_source_status,
    load_image_set,
)
from cnnkit.errors import DataError

# ----------------------------------------------------------------------------------------------------
# Synthetic file writers

MNIST_SMALL = MNIST_SPEC.with_counts(train=50, test=20)
CIFAR_SMALL = CIFAR10_SPEC.with_counts(train=25, test=10)
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def make_arrays(spec: ImageSetSpec, seed: int = 0) -> ImageArrays:
    """Random uint8 HWC images and int64 labels matching `spec`'s counts."""
    rng = np.random.default_rng(seed)
    shape = (spec.height, spec.width, spec.channels)
    return ImageArrays(
        x_train=rng.integers(0, 256, (spec.train_count, *shape), dtype=np.uint8),
        y_train=rng.integers(0, spec.num_classes, spec.train_count).astype(np.int64),
        x_test=rng.integers(0, 256, (spec.test_count, *shape), dtype=np.uint8),
        y_test=rng.integers(0, spec.num_classes, spec.test_count).astype(np.int64),
        source="synthetic",
    )


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, big-endian dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_file(path: Path, data: bytes, gz: bool = False) -> Path:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_idx_set(directory: Path, arrays: ImageArrays, gz: bool = False) -> list[Path]:
    """The four MNIST IDX files (images without the channel axis)."""
    contents = (arrays.x_train[..., 0], arrays.y_train, arrays.x_test[..., 0], arrays.y_test)
    return [write_file(directory / name, idx_bytes(a), gz) for name, a in zip(IDX_NAMES, contents, strict=True)]


def write_npz(path: Path, arrays: ImageArrays, drop_channel: bool = True, **overrides: np.ndarray) -> Path:
    x_train, x_test = arrays.x_train, arrays.x_test
    if drop_channel and x_train.shape[-1] == 1:
        x_train, x_test = x_train[..., 0], x_test[..., 0]
    content = {"x_train": x_train, "y_train": arrays.y_train, "x_test": x_test, "y_test": arrays.y_test}
    content.update(overrides)
    np.savez(path, **content)
    return path


def cifar_batch(x: np.ndarray, y: np.ndarray, label: str = "batch") -> dict:
    """A batch dict as in the official files: rows of CHW planes (R 1024, G 1024, B 1024)."""
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    return {
        "batch_label": label,
        "labels": [int(v) for v in y],
        "data": np.ascontiguousarray(rows),
        "filenames": [f"img_{i}.png" for i in range(len(x))],
    }


def write_cifar_folder(
    directory: Path, arrays: ImageArrays, label_names: tuple[str, ...] = CIFAR10_SPEC.class_names
) -> Path:
    """`cifar-10-batches-py` with the training set split over data_batch_1..5."""
    folder = directory / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    splits = np.array_split(np.arange(len(arrays.x_train)), 5)
    for i, idx in enumerate(splits, start=1):
        batch = cifar_batch(arrays.x_train[idx], arrays.y_train[idx], f"training batch {i} of 5")
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(cifar_batch(arrays.x_test, arrays.y_test), protocol=2))
    meta = {"num_cases_per_batch": 10000, "label_names": list(label_names), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def py2_pickle(obj: object) -> bytes:
    """Pickle `obj` as Python 2's cPickle wrote the official CIFAR files (protocol 2, py2 `str` opcodes,
    `numpy.core.multiarray._reconstruct`), for dicts, lists, str, int and 2-D uint8 arrays."""

    def text(b: bytes) -> bytes:  # a py2 str: SHORT_BINSTRING / BINSTRING
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<I", len(b))) + b

    def integer(v: int) -> bytes:  # BININT
        return b"J" + struct.pack("<i", v)

    def enc(o: object) -> bytes:
        if isinstance(o, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u"
        if isinstance(o, list):
            return b"](" + b"".join(enc(v) for v in o) + b"e"
        if isinstance(o, str):
            return text(o.encode("latin1"))
        if isinstance(o, int):
            return integer(o)
        assert isinstance(o, np.ndarray) and o.dtype == np.uint8 and o.ndim == 2
        return b"".join(
            [
                b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n",
                integer(0) + b"\x85" + text(b"b") + b"\x87R",
                b"(" + integer(1) + integer(o.shape[0]) + integer(o.shape[1]) + b"\x86",
                b"cnumpy\ndtype\n" + text(b"u1") + integer(0) + integer(1) + b"\x87R",
                b"(" + integer(3) + text(b"|") + b"NNN" + integer(-1) + integer(-1) + integer(0) + b"tb",
                b"\x89" + text(o.tobytes()) + b"tb",
            ]
        )

    return b"\x80\x02" + enc(obj) + b"."


def write_cifar_tar(directory: Path, arrays: ImageArrays) -> Path:
    """`cifar-10-python.tar.gz` holding the folder, as distributed."""
    staging = directory / "staging"
    folder = write_cifar_folder(staging, arrays)
    archive = directory / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    shutil.rmtree(staging)
    return archive


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_same(got: ImageArrays, want: ImageArrays) -> None:
    for key in ("x_train", "y_train", "x_test", "y_test"):
        a, b = getattr(got, key), getattr(want, key)
        assert a.dtype == (np.uint8 if key.startswith("x") else np.int64), key
        assert a.shape == b.shape, key
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert got.x_train.flags.c_contiguous and got.x_test.flags.c_contiguous


def raises_data_error(*fragments: str):
    """Context manager: DataError whose one-line message contains every fragment."""

    class _Check:
        def __enter__(self):
            self._cm = pytest.raises(DataError)
            self.info = self._cm.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self._cm.__exit__(*exc)
            message = str(self.info.value)
            assert "\n" not in message, message
            for fragment in fragments:
                assert fragment in message, f"{fragment!r} not in {message!r}"
            return suppressed

    return _Check()


# ----------------------------------------------------------------------------------------------------
# Round trips: every format reads back exactly what was written


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    want = make_arrays(MNIST_SMALL)
    write_idx_set(tmp_path, want, gz=gz)
    source = IdxSource()
    assert source.present(tmp_path)
    got = source.read(tmp_path, MNIST_SMALL)
    assert_same(got, want)
    assert got.x_train.shape == (50, 28, 28, 1)
    assert got.source == str(tmp_path)


def test_idx_mixed_raw_and_gz_and_subfolder(tmp_path: Path) -> None:
    want = make_arrays(MNIST_SMALL)
    paths = write_idx_set(tmp_path / "MNIST" / "raw", want, gz=False)
    for path in paths[::2]:  # two raw, two gz
        write_file(path, path.read_bytes(), gz=True)
        path.unlink()
    assert not IdxSource().present(tmp_path)
    source = IdxSource(subfolder="MNIST/raw")
    assert source.present(tmp_path)
    assert_same(source.read(tmp_path, MNIST_SMALL), want)


def test_idx_extra_dirs(tmp_path: Path) -> None:
    want = make_arrays(MNIST_SMALL)
    system_dir = tmp_path / "usr-share" / "fashion-mnist"
    write_idx_set(system_dir, want, gz=True)
    data_dir = tmp_path / "data"
    source = IdxSource(torchvision_dataset="FashionMNIST", extra_dirs=[system_dir])
    got = load_image_set(MNIST_SMALL, [NpzSource("fashion_mnist.npz"), source], data_dir, download=False)
    assert_same(got, want)
    assert got.source == str(system_dir)


@pytest.mark.parametrize("drop_channel", [True, False], ids=["NHW", "NHWC"])
def test_npz_round_trip_mnist(tmp_path: Path, drop_channel: bool) -> None:
    want = make_arrays(MNIST_SMALL)
    # labels as Keras stores them (uint8) and as (N, 1) columns: both accepted
    path = write_npz(
        tmp_path / "mnist.npz",
        want,
        drop_channel=drop_channel,
        y_train=want.y_train.astype(np.uint8),
        y_test=want.y_test.astype(np.int32).reshape(-1, 1),
    )
    got = NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)
    assert_same(got, want)
    assert got.source == str(path)


def test_npz_round_trip_cifar(tmp_path: Path) -> None:
    want = make_arrays(CIFAR_SMALL)
    write_npz(tmp_path / "cifar10.npz", want)
    assert_same(NpzSource("cifar10.npz").read(tmp_path, CIFAR_SMALL), want)


def test_cifar_folder_round_trip(tmp_path: Path) -> None:
    want = make_arrays(CIFAR_SMALL)
    folder = write_cifar_folder(tmp_path, want)
    source = CifarBatchesSource()
    assert source.present(tmp_path)
    got = source.read(tmp_path, CIFAR_SMALL)
    assert_same(got, want)
    assert got.source == str(folder)


def test_cifar_python2_pickles(tmp_path: Path) -> None:
    """The official batches were written by Python 2 (py2 strings, numpy.core globals): read them too."""
    want = make_arrays(CIFAR_SMALL)
    folder = write_cifar_folder(tmp_path, want)
    for path in folder.iterdir():
        content = pickle.loads(path.read_bytes())
        path.write_bytes(py2_pickle(content))
    assert b"numpy.core.multiarray\n_reconstruct" in (folder / "test_batch").read_bytes()
    assert_same(CifarBatchesSource().read(tmp_path, CIFAR_SMALL), want)


def test_cifar_planes_are_converted_to_hwc(tmp_path: Path) -> None:
    """A red image in the official CHW row layout must come back with R in channel 0."""
    want = make_arrays(CIFAR_SMALL)
    want.x_train[:] = 0
    want.x_train[0, :, :, 0] = 255
    want.x_train[0, 1, 2, 2] = 7  # one blue pixel at row 1, column 2
    folder = write_cifar_folder(tmp_path, want)
    raw = pickle.loads((folder / "data_batch_1").read_bytes())["data"][0]
    assert raw[:1024].min() == 255 and raw[1024:2048].max() == 0 and raw[2048 + 32 + 2] == 7
    got = CifarBatchesSource().read(tmp_path, CIFAR_SMALL)
    assert got.x_train[0, 1, 2].tolist() == [255, 0, 7]


def test_cifar_archive_round_trip(tmp_path: Path) -> None:
    want = make_arrays(CIFAR_SMALL)
    archive = write_cifar_tar(tmp_path, want)
    source = CifarBatchesSource()
    assert source.present(tmp_path)
    got = source.read(tmp_path, CIFAR_SMALL)
    assert_same(got, want)
    assert got.source == str(archive)
    assert not (tmp_path / "cifar-10-batches-py").exists()  # read in place, nothing extracted


def test_load_image_set_takes_first_present_source(tmp_path: Path) -> None:
    npz_arrays, idx_arrays = make_arrays(MNIST_SMALL, seed=1), make_arrays(MNIST_SMALL, seed=2)
    write_idx_set(tmp_path, idx_arrays, gz=True)
    sources = [NpzSource("mnist.npz"), IdxSource()]
    assert_same(load_image_set(MNIST_SMALL, sources, tmp_path, download=False), idx_arrays)
    write_npz(tmp_path / "mnist.npz", npz_arrays)
    assert_same(load_image_set(MNIST_SMALL, sources, tmp_path, download=False), npz_arrays)


def test_sources_satisfy_protocol() -> None:
    for source in (NpzSource("mnist.npz"), IdxSource(), CifarBatchesSource()):
        assert isinstance(source, Source)


# ----------------------------------------------------------------------------------------------------
# Corrupt IDX files


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_truncated(tmp_path: Path, gz: bool) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL), gz=False)
    data = paths[0].read_bytes()
    paths[0].unlink()
    bad = write_file(paths[0], data[:1000], gz=gz)
    with raises_data_error(str(bad), "truncated", "header says 50 images of 28x28 (39216 bytes)", "holds 1000 bytes"):
        IdxSource().read(tmp_path, MNIST_SMALL)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_idx_trailing_garbage(tmp_path: Path, gz: bool) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL), gz=False)
    data = paths[1].read_bytes()
    paths[1].unlink()
    bad = write_file(paths[1], data + b"junk", gz=gz)
    with raises_data_error(str(bad), "trailing data", "header says 50 labels", "holds 62 bytes"):
        IdxSource().read(tmp_path, MNIST_SMALL)


def test_idx_wrong_magic(tmp_path: Path) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL))
    shutil.copy(paths[3], paths[2])  # a labels file where images belong
    with raises_data_error(str(paths[2]), "not an IDX image file", "magic 0x00000801", "expected 0x00000803"):
        IdxSource().read(tmp_path, MNIST_SMALL)


def test_idx_wrong_image_size(tmp_path: Path) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL))
    paths[0].write_bytes(idx_bytes(np.zeros((50, 28, 27), np.uint8)))
    with raises_data_error(str(paths[0]), "images are 28x27, expected 28x28"):
        IdxSource().read(tmp_path, MNIST_SMALL)


@pytest.mark.parametrize("damage", ["not_gzip", "cut_stream", "bad_crc"])
def test_idx_corrupt_gzip(tmp_path: Path, damage: str) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL), gz=True)
    data = paths[0].read_bytes()
    if damage == "not_gzip":
        data = b"this is not gzip data at all" * 10
    elif damage == "cut_stream":
        data = data[: len(data) // 2]
    else:
        data = data[:-8] + bytes(b ^ 0xFF for b in data[-8:-4]) + data[-4:]
    paths[0].write_bytes(data)
    with raises_data_error(str(paths[0]), "corrupt gzip data"):
        IdxSource().read(tmp_path, MNIST_SMALL)


def test_idx_labels_out_of_range(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    arrays.y_test[3] = 12
    paths = write_idx_set(tmp_path, arrays, gz=True)
    with raises_data_error(f"{paths[3]}: labels out of range 0-9 (found 12)"):
        IdxSource().read(tmp_path, MNIST_SMALL)


def test_idx_mismatched_counts(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    paths = write_idx_set(tmp_path, arrays)
    paths[1].write_bytes(idx_bytes(arrays.y_train[:49]))
    with raises_data_error(str(paths[1]), "holds 49 labels but train-images-idx3-ubyte holds 50 images"):
        IdxSource().read(tmp_path, MNIST_SMALL)


def test_idx_count_differs_from_spec(tmp_path: Path) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL))
    with raises_data_error(str(paths[0]), "holds 50 images, expected 60000"):
        IdxSource().read(tmp_path, MNIST_SPEC)


def test_idx_incomplete_set(tmp_path: Path) -> None:
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL))
    paths[3].unlink()
    source = IdxSource()
    assert source.present(tmp_path)  # partially there: read, and say what is missing (never skipped silently)
    with raises_data_error(str(tmp_path), "missing t10k-labels-idx1-ubyte[.gz]"):
        load_image_set(MNIST_SMALL, [NpzSource("mnist.npz"), source], tmp_path, download=False)


# ----------------------------------------------------------------------------------------------------
# Corrupt npz files


def test_npz_wrong_dtype(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    path = write_npz(tmp_path / "mnist.npz", arrays, x_train=arrays.x_train[..., 0].astype(np.float32))
    with raises_data_error(str(path), "x_train has dtype float32, expected uint8"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_wrong_shape(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    path = write_npz(tmp_path / "mnist.npz", arrays, x_test=np.zeros((20, 28, 27), np.uint8))
    with raises_data_error(str(path), "x_test has shape (20, 28, 27), expected (N, 28, 28)"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_cifar_wrong_channels(tmp_path: Path) -> None:
    arrays = make_arrays(CIFAR_SMALL)
    path = write_npz(tmp_path / "cifar10.npz", arrays, x_train=arrays.x_train.transpose(0, 3, 1, 2).copy())
    with raises_data_error(str(path), "x_train has shape (25, 3, 32, 32), expected (N, 32, 32, 3)"):
        NpzSource("cifar10.npz").read(tmp_path, CIFAR_SMALL)


def test_npz_missing_key(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=arrays.x_train, y_train=arrays.y_train, x_test=arrays.x_test)
    with raises_data_error(str(path), "missing array(s) y_test"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"<html>404 not found</html>")
    with raises_data_error(str(path), "not an .npz file"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_corrupt_member(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w") as z:
        for key in NpzSource.KEYS:
            z.writestr(f"{key}.npy", b"\x93NUMPY garbage")
    with raises_data_error(str(path), "corrupt .npz"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_float_labels_refused(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    path = write_npz(tmp_path / "mnist.npz", arrays, y_train=arrays.y_train.astype(np.float64))
    with raises_data_error(str(path), "y_train has dtype float64, expected integer labels"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


@pytest.mark.parametrize("bad", [10, -1])
def test_npz_labels_out_of_range(tmp_path: Path, bad: int) -> None:
    arrays = make_arrays(MNIST_SMALL)
    y = arrays.y_train.copy()
    y[7] = bad
    path = write_npz(tmp_path / "mnist.npz", arrays, y_train=y)
    with raises_data_error(str(path), f"y_train labels out of range 0-9 (found {bad})"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_mismatched_counts(tmp_path: Path) -> None:
    arrays = make_arrays(MNIST_SMALL)
    path = write_npz(tmp_path / "mnist.npz", arrays, y_test=arrays.y_test[:19])
    with raises_data_error(str(path), "x_test has 20 images but y_test has 19 labels"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SMALL)


def test_npz_count_differs_from_spec(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mnist.npz", make_arrays(MNIST_SMALL))
    with raises_data_error(str(path), "x_train has 50 images, expected 60000"):
        NpzSource("mnist.npz").read(tmp_path, MNIST_SPEC)


# ----------------------------------------------------------------------------------------------------
# Corrupt CIFAR batches


def test_cifar_wrong_label_names(tmp_path: Path) -> None:
    names = list(CIFAR10_SPEC.class_names)
    names[0], names[1] = names[1], names[0]
    folder = write_cifar_folder(tmp_path, make_arrays(CIFAR_SMALL), label_names=tuple(names))
    with raises_data_error(str(folder / "batches.meta"), "label_names", "do not match"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)


def test_cifar_label_names_ignored_without_spec_names(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path, make_arrays(CIFAR_SMALL), label_names=("a",) * 10)
    got = CifarBatchesSource().read(tmp_path, dataclasses.replace(CIFAR_SMALL, class_names=()))
    assert len(got.x_train) == 25


def test_cifar_malicious_pickle_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = write_cifar_folder(tmp_path, make_arrays(CIFAR_SMALL))
    (folder / "data_batch_2").write_bytes(pickle.dumps({"data": Exploit(), "labels": []}))
    with raises_data_error(str(folder / "data_batch_2"), "refused", "system is not allowed"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)
    assert not marker.exists()


def test_cifar_wrong_structure(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path, make_arrays(CIFAR_SMALL))
    (folder / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with raises_data_error(str(folder / "test_batch"), "holds a list, expected a dict"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)
    (folder / "test_batch").write_bytes(pickle.dumps({"labels": [1]}))
    with raises_data_error(str(folder / "test_batch"), "no 'data' entry"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3000), np.uint8), "labels": [1, 2]}))
    with raises_data_error(str(folder / "test_batch"), "'data' has shape (2, 3000), expected (N, 3072)"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with raises_data_error(str(folder / "test_batch"), "pickle"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)


def test_cifar_labels_out_of_range_and_mismatch(tmp_path: Path) -> None:
    arrays = make_arrays(CIFAR_SMALL)
    folder = write_cifar_folder(tmp_path, arrays)
    batch = cifar_batch(arrays.x_test, arrays.y_test)
    batch["labels"][0] = 11
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with raises_data_error(f"{folder / 'test_batch'}: labels out of range 0-9 (found 11)"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)
    batch["labels"] = batch["labels"][1:]
    batch["labels"][0] = 1
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with raises_data_error(str(folder / "test_batch"), "'data' has 10 images but 'labels' has 9 labels"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)


def test_cifar_counts_and_missing_batch(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path, make_arrays(CIFAR_SMALL))
    with raises_data_error(str(folder), "training batches hold 25 images, expected 50000"):
        CifarBatchesSource().read(tmp_path, CIFAR10_SPEC)
    (folder / "data_batch_4").unlink()
    with raises_data_error(str(folder), "missing data_batch_4"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)


def test_cifar_corrupt_archive(tmp_path: Path) -> None:
    archive = write_cifar_tar(tmp_path, make_arrays(CIFAR_SMALL))
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with raises_data_error(str(archive), "corrupt archive"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)


def test_cifar_archive_missing_member(tmp_path: Path) -> None:
    staging = write_cifar_folder(tmp_path / "staging", make_arrays(CIFAR_SMALL))
    (staging / "test_batch").unlink()
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging, arcname="cifar-10-batches-py")
    with raises_data_error(str(archive), "missing cifar-10-batches-py/test_batch"):
        CifarBatchesSource().read(tmp_path, CIFAR_SMALL)


# ----------------------------------------------------------------------------------------------------
# Downloads (no network: torchvision's download_url is replaced)


def fake_server(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], fail: set[str] = frozenset()) -> list:
    """Serve `files` (url -> local file) via torchvision.datasets.utils.download_url; URLError elsewhere."""
    import torchvision.datasets.utils as tv_utils

    calls = []

    def download_url(url, root, filename=None, md5=None, max_redirect_hops=3):
        calls.append(url)
        if url in fail or url not in files:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        shutil.copy(files[url], Path(root) / (filename or Path(url).name))

    monkeypatch.setattr(tv_utils, "download_url", download_url)
    return calls


def test_mnist_resources_come_from_torchvision() -> None:
    import torchvision.datasets as tvd

    resources = IdxSource(torchvision_dataset="MNIST").resources()
    assert [r.filename for r in resources] == [f"{name}.gz" for name in IDX_NAMES]
    for res in resources:
        assert len(res.md5) == 32 and all(c in "0123456789abcdef" for c in res.md5)
        assert res.urls == tuple(m.rstrip("/") + "/" + res.filename for m in tvd.MNIST.mirrors)
        assert (res.filename, res.md5) in [tuple(r) for r in tvd.MNIST.resources]
    (cifar,) = CifarBatchesSource().resources()
    assert cifar.filename == "cifar-10-python.tar.gz" and cifar.urls == (tvd.CIFAR10.url,)
    assert cifar.md5 == tvd.CIFAR10.tgz_md5


def test_idx_download_uses_mirrors_and_checks_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    want = make_arrays(MNIST_SMALL)
    served = write_idx_set(tmp_path / "server", want, gz=True)
    mirrors = ["https://dead.invalid/mnist/", "https://mirror.invalid/mnist/"]
    monkeypatch.setattr(tvd.MNIST, "mirrors", mirrors)
    monkeypatch.setattr(tvd.MNIST, "resources", [(p.name, md5_of(p)) for p in served])
    calls = fake_server(monkeypatch, {mirrors[1] + p.name: p for p in served})
    data_dir = tmp_path / "data"
    sources = [NpzSource("mnist.npz"), IdxSource(torchvision_dataset="MNIST")]
    got = load_image_set(MNIST_SMALL, sources, data_dir)
    assert_same(got, want)
    assert got.source == str(data_dir)
    assert calls[:2] == [
        mirrors[0] + served[0].name,
        mirrors[1] + served[0].name,
    ]  # first mirror fails, second used
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(p.name for p in served)  # no temp files left
    # second load reads from disk, no download
    calls.clear()
    assert_same(load_image_set(MNIST_SMALL, sources, data_dir), want)
    assert calls == []


def test_idx_download_md5_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    served = write_idx_set(tmp_path / "server", make_arrays(MNIST_SMALL), gz=True)
    monkeypatch.setattr(tvd.MNIST, "mirrors", ["https://m.invalid/"])
    monkeypatch.setattr(tvd.MNIST, "resources", [(p.name, "0" * 32) for p in served])
    fake_server(monkeypatch, {"https://m.invalid/" + p.name: p for p in served})
    data_dir = tmp_path / "data"
    with raises_data_error("no mnist data in", "download failed", "md5", "does not match"):
        load_image_set(MNIST_SMALL, [IdxSource(torchvision_dataset="MNIST")], data_dir)
    assert not data_dir.exists()  # nothing half-downloaded left behind, not even the directory it made


def test_cifar_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    want = make_arrays(CIFAR_SMALL)
    (tmp_path / "server").mkdir()
    archive = write_cifar_tar(tmp_path / "server", want)
    monkeypatch.setattr(tvd.CIFAR10, "url", "https://cifar.invalid/cifar-10-python.tar.gz")
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", md5_of(archive))
    fake_server(monkeypatch, {"https://cifar.invalid/cifar-10-python.tar.gz": archive})
    data_dir = tmp_path / "data"
    got = load_image_set(CIFAR_SMALL, [NpzSource("cifar10.npz"), CifarBatchesSource()], data_dir)
    assert_same(got, want)
    assert got.source == str(data_dir / "cifar-10-python.tar.gz")


def test_download_failure_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_server(monkeypatch, {})
    data_dir = tmp_path / "data"
    sources = [NpzSource("mnist.npz"), IdxSource(torchvision_dataset="MNIST")]
    with raises_data_error(
        f"no mnist data in {data_dir} (looked for mnist.npz, train-images-idx3-ubyte[.gz], ",
        "t10k-labels-idx1-ubyte[.gz])",
        "download failed: could not download train-images-idx3-ubyte.gz",
        "Temporary failure in name resolution",
        "Put one of these files there or pass --data-dir",
    ):
        load_image_set(MNIST_SMALL, sources, data_dir)
    assert calls  # it did try
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_download_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_server(monkeypatch, {})
    with raises_data_error(f"no mnist data in {tmp_path}", "download disabled"):
        load_image_set(
            MNIST_SMALL,
            [NpzSource("mnist.npz"), IdxSource(torchvision_dataset="MNIST")],
            tmp_path,
            download=False,
        )
    with raises_data_error("no download available"):
        load_image_set(MNIST_SMALL, [NpzSource("mnist.npz"), IdxSource()], tmp_path)
    assert calls == []


# ----------------------------------------------------------------------------------------------------
# Data directory and status lines


def test_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNNKIT_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert default_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert default_data_dir() == tmp_path / "env"
    monkeypatch.delenv("CNNKIT_DATA_DIR")
    assert default_data_dir() == tmp_path / "xdg" / "cnnkit" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "cnnkit" / "data"


def test_describe_source_status(tmp_path: Path) -> None:
    write_npz(tmp_path / "mnist.npz", make_arrays(MNIST_SMALL))
    paths = write_idx_set(tmp_path, make_arrays(MNIST_SMALL), gz=True)
    paths[0].write_bytes(b"junk")
    lines = describe_source_status(MNIST_SMALL, [NpzSource("mnist.npz"), IdxSource(), CifarBatchesSource()], tmp_path)
    assert len(lines) == 3
    assert lines[0] == f"mnist: {tmp_path / 'mnist.npz'} OK: train 50, test 20, 28x28x1, 10 classes"
    assert lines[1].startswith("mnist: INVALID: ") and str(paths[0]) in lines[1]
    assert "absent" in lines[2] and "cifar-10-python.tar.gz" in lines[2]


# ----------------------------------------------------------------------------------------------------
# Real data (from $CNNKIT_DATA_DIR)


def _real_dir(filename: str) -> Path:
    env = os.environ.get("CNNKIT_DATA_DIR")
    if not env or not (Path(env) / filename).is_file():
        pytest.skip(f"$CNNKIT_DATA_DIR has no {filename}")
    return Path(env)


@pytest.mark.realdata
def test_real_mnist() -> None:
    data_dir = _real_dir("mnist.npz")
    arrays = load_image_set(MNIST_SPEC, [NpzSource("mnist.npz"), IdxSource()], data_dir, download=False)
    assert arrays.x_train.shape == (60000, 28, 28, 1) and arrays.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(arrays.y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(arrays.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.realdata
def test_real_cifar10() -> None:
    data_dir = _real_dir("cifar10.npz")
    arrays = load_image_set(CIFAR10_SPEC, [NpzSource("cifar10.npz"), CifarBatchesSource()], data_dir, download=False)
    assert arrays.x_train.shape == (50000, 32, 32, 3) and arrays.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(arrays.y_train).tolist() == [5000] * 10
    assert np.bincount(arrays.y_test).tolist() == [1000] * 10


@pytest.mark.realdata
def test_real_fashion_mnist_from_os_package() -> None:
    system_dir = Path("/usr/share/datasets/fashion-mnist")
    if not (system_dir / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{system_dir} not installed (apt-get install dataset-fashion-mnist)")
    source = IdxSource(torchvision_dataset="FashionMNIST", extra_dirs=[system_dir])
    arrays = source.read(Path("/nonexistent"), MNIST_SPEC)  # same shapes and counts as MNIST
    assert arrays.x_train.shape == (60000, 28, 28, 1) and arrays.source == str(system_dir)
    assert np.bincount(arrays.y_train).tolist() == [6000] * 10
    assert np.bincount(arrays.y_test).tolist() == [1000] * 10
