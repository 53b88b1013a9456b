"""Image-classification datasets on disk: readers, validation and checksummed downloads.

Three on-disk forms are understood, each a `Source`:

* `NpzSource`: the Keras layout (`mnist.npz`, `cifar10.npz`) with `x_train`, `y_train`, `x_test`, `y_test`;
* `IdxSource`: the official MNIST-style IDX files, raw or gzipped;
* `CifarBatchesSource`: the official CIFAR-10 "python version" (the extracted folder or the `.tar.gz` itself).

Every read is validated in full (dtype, shape, counts, label range, headers, file sizes) and a problem is a
`DataError` naming the file and what is wrong; a partial or malformed dataset is never returned.
Only numpy is imported here; torchvision is imported lazily, inside the download functions.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from cnnkit.errors import DataError

__all__ = [
    "CifarBatchesSource",
    "DownloadResource",
    "IdxSource",
    "ImageArrays",
    "ImageSetSpec",
    "NpzSource",
    "Source",
    "default_data_dir",
    "describe_source_status",
    "load_image_set",
]


# ----------------------------------------------------------------------------------------------------
# Specs and results


@dataclass(frozen=True)
class ImageSetSpec:
    """What a dataset must look like: image size, classes and the exact train/test counts."""

    name: str
    height: int
    width: int
    channels: int
    num_classes: int
    train_count: int
    test_count: int
    class_names: tuple[str, ...] = ()

    def with_counts(self, train: int, test: int) -> ImageSetSpec:
        """The same spec expecting `train` training and `test` test images (for small synthetic files)."""
        return dataclasses.replace(self, train_count=train, test_count=test)

    @property
    def shape_text(self) -> str:
        """`28x28x1`-style image size."""
        return f"{self.height}x{self.width}x{self.channels}"


@dataclass(frozen=True)
class ImageArrays:
    """A validated dataset: uint8 images (N, H, W, C), int64 labels (N,), and where it was read from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    files: tuple[Path, ...] = ()  # the files read, for provenance (name and SHA-256 in config.json)


@dataclass(frozen=True)
class DownloadResource:
    """One official file: its name, md5 and the URLs to try in turn."""

    filename: str
    md5: str
    urls: tuple[str, ...]


@runtime_checkable
class Source(Protocol):
    """One way a dataset can be present in a data directory."""

    def filenames(self) -> list[str]:
        """Names looked for, for messages (`mnist.npz`)."""
        ...

    def present(self, data_dir: Path) -> bool:
        """Whether its files are there (in any readable form)."""
        ...

    def read(self, data_dir: Path, spec: ImageSetSpec) -> ImageArrays:
        """Read and validate the dataset; `DataError` on any problem."""
        ...

    def can_download(self) -> bool:
        """Whether `download` knows the official files."""
        ...

    def download(self, data_dir: Path) -> None:
        """Fetch the official files into `data_dir`, checksums verified; `DataError` on failure."""
        ...


# ----------------------------------------------------------------------------------------------------
# Validation shared by all formats


def _images_expected(spec: ImageSetSpec) -> str:
    h, w, c = spec.height, spec.width, spec.channels
    if c == 1:
        return f"(N, {h}, {w}) or (N, {h}, {w}, 1)"
    return f"(N, {h}, {w}, {c})"


def _check_images(x: np.ndarray, where: str, key: str, spec: ImageSetSpec) -> np.ndarray:
    """uint8 images of the spec's size, returned as (N, H, W, C)."""
    if not isinstance(x, np.ndarray):
        raise DataError(f"{where}: {key} is a {type(x).__name__}, expected a uint8 array")
    if x.dtype != np.uint8:
        raise DataError(f"{where}: {key} has dtype {x.dtype}, expected uint8")
    shape = x.shape
    if x.ndim == 3 and spec.channels == 1:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[1:] != (spec.height, spec.width, spec.channels):
        raise DataError(f"{where}: {key} has shape {shape}, expected {_images_expected(spec)}")
    return np.ascontiguousarray(x)


def _check_labels(y: Any, where: str, key: str, spec: ImageSetSpec) -> np.ndarray:
    """Integer labels (N,) or (N, 1) in [0, num_classes), returned as int64 (N,)."""
    if not isinstance(y, np.ndarray):
        y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise DataError(f"{where}: {key} has dtype {y.dtype}, expected integer labels")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: {key} has shape {y.shape}, expected (N,) or (N, 1)")
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= spec.num_classes:
            bad = lo if lo < 0 else hi
            what = key if key.endswith("labels") else f"{key} labels"
            raise DataError(f"{where}: {what} out of range 0-{spec.num_classes - 1} (found {bad})")
    return y.astype(np.int64)


def _check_pair(x: np.ndarray, y: np.ndarray, where: str, xkey: str, ykey: str, expected: int) -> None:
    if len(x) != len(y):
        raise DataError(f"{where}: {xkey} has {len(x)} images but {ykey} has {len(y)} labels")
    if len(x) != expected:
        raise DataError(f"{where}: {xkey} has {len(x)} images, expected {expected}")


# ----------------------------------------------------------------------------------------------------
# Downloads (torchvision imported lazily)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _md5(path: Path) -> str:
    return file_digest(path, "md5")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)  # urllib.error.URLError
    text = str(reason if reason is not None else exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _torchvision_dataset(name: str) -> Any:
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:  # pragma: no cover - torchvision is a dependency
        raise DataError(f"cannot download: torchvision is not importable ({exc})") from exc
    try:
        return getattr(tvd, name)
    except AttributeError:
        raise DataError(f"cannot download: torchvision.datasets has no dataset {name!r}") from None


def _download_all(resources: Sequence[DownloadResource], data_dir: Path) -> None:
    """Download every resource (trying each URL in turn, md5 verified), then move them all into `data_dir`.

    Files land under a temporary name inside `data_dir` first, so a failed or interrupted download
    leaves nothing behind and a present file is always complete.
    """
    from torchvision.datasets import utils as tv_utils

    created = not data_dir.exists()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".cnnkit-download-", dir=data_dir))
    except OSError as exc:
        raise DataError(f"{data_dir}: cannot create the data directory ({exc.strerror or exc})") from exc
    complete = False
    try:
        for res in resources:
            target = tmp / res.filename
            errors: list[str] = []
            for url in res.urls:
                try:
                    tv_utils.download_url(url, str(tmp), filename=res.filename, md5=res.md5)
                    if not target.is_file():
                        raise OSError("no file was written")
                    actual = _md5(target)
                    if actual != res.md5:
                        raise OSError(f"md5 {actual} does not match the expected {res.md5}")
                except Exception as exc:  # a network boundary: any failure means "try the next mirror"
                    errors.append(f"{url}: {_reason(exc)}")
                    target.unlink(missing_ok=True)
                    continue
                break
            else:
                raise DataError(f"could not download {res.filename} ({'; '.join(errors)})")
        for res in resources:
            os.replace(tmp / res.filename, data_dir / res.filename)
        complete = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not complete:
            shutil.rmtree(data_dir, ignore_errors=True)  # leave no empty directory behind a failed download


# ----------------------------------------------------------------------------------------------------
# Keras .npz


class NpzSource:
    """A Keras-layout `.npz` archive holding uint8 `x_train`, `y_train`, `x_test`, `y_test`."""

    KEYS = ("x_train", "y_train", "x_test", "y_test")

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def __repr__(self) -> str:
        return f"NpzSource({self.filename!r})"

    def filenames(self) -> list[str]:
        return [self.filename]

    def present(self, data_dir: Path) -> bool:
        return (Path(data_dir) / self.filename).is_file()

    def read(self, data_dir: Path, spec: ImageSetSpec) -> ImageArrays:
        path = Path(data_dir) / self.filename
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path}: not an .npz file (not a zip archive)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in self.KEYS if k not in npz.files]
                if missing:
                    raise DataError(
                        f"{path}: missing array(s) {', '.join(missing)} (holds {', '.join(npz.files) or 'nothing'})"
                    )
                arrays = {k: npz[k] for k in self.KEYS}
        except DataError:
            raise
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path}: corrupt .npz ({_reason(exc)})") from exc
        where = str(path)
        x_train = _check_images(arrays["x_train"], where, "x_train", spec)
        x_test = _check_images(arrays["x_test"], where, "x_test", spec)
        y_train = _check_labels(arrays["y_train"], where, "y_train", spec)
        y_test = _check_labels(arrays["y_test"], where, "y_test", spec)
        _check_pair(x_train, y_train, where, "x_train", "y_train", spec.train_count)
        _check_pair(x_test, y_test, where, "x_test", "y_test", spec.test_count)
        return ImageArrays(x_train, y_train, x_test, y_test, where, (path,))

    def can_download(self) -> bool:
        return False

    def download(self, data_dir: Path) -> None:
        raise DataError(f"{self.filename}: no official download for the .npz layout")


# ----------------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _read_exact(f: io.BufferedIOBase, out: np.ndarray) -> int:
    """Fill `out` from `f`; returns the number of bytes read (fewer at end of file)."""
    view = out.data.cast("B")  # ndarray.data is memoryview(out)
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _count_rest(f: io.BufferedIOBase) -> int:
    total = 0
    for chunk in iter(lambda: f.read(1 << 20), b""):
        total += len(chunk)
    return total


def _read_idx(path: Path, images: bool, spec: ImageSetSpec) -> np.ndarray:
    """One IDX file (raw or .gz), header and size checked: uint8 images (N, H, W, 1) or int64 labels (N,)."""
    magic_expected = _IDX_IMAGES_MAGIC if images else _IDX_LABELS_MAGIC
    header_len = 16 if images else 8
    gz = path.name.endswith(".gz")
    unit = " (uncompressed)" if gz else ""
    try:
        opener = gzip.open if gz else open
        with opener(path, "rb") as f:
            header = f.read(header_len)
            if len(header) < 4:
                raise DataError(f"{path}: truncated: {len(header)} bytes{unit}, shorter than an IDX header")
            (magic,) = struct.unpack(">I", header[:4])
            if magic != magic_expected:
                kind = "image" if images else "label"
                raise DataError(
                    f"{path}: not an IDX {kind} file (magic 0x{magic:08x}, expected 0x{magic_expected:08x})"
                )
            if len(header) < header_len:
                raise DataError(
                    f"{path}: truncated: {len(header)} bytes{unit}, shorter than the {header_len}-byte IDX header"
                )
            if images:
                n, rows, cols = struct.unpack(">III", header[4:16])
                if (rows, cols) != (spec.height, spec.width):
                    raise DataError(
                        f"{path}: images are {rows}x{cols}, expected {spec.height}x{spec.width} for {spec.name}"
                    )
                payload = n * rows * cols
                what = f"{n} images of {rows}x{cols} ({header_len + payload} bytes)"
            else:
                (n,) = struct.unpack(">I", header[4:8])
                payload = n
                what = f"{n} labels ({header_len + payload} bytes)"
            if not gz:  # cheap exact check before reading
                size = os.fstat(f.fileno()).st_size
                if size != header_len + payload:
                    problem = "truncated" if size < header_len + payload else "trailing data"
                    raise DataError(f"{path}: {problem}: header says {what} but the file holds {size} bytes")
            data = np.empty(payload, dtype=np.uint8)
            got = _read_exact(f, data)
            if got < payload:
                raise DataError(
                    f"{path}: truncated: header says {what} but the file holds {header_len + got} bytes{unit}"
                )
            extra = _count_rest(f)
            if extra:
                raise DataError(
                    f"{path}: trailing data: header says {what} but the file holds "
                    f"{header_len + payload + extra} bytes{unit}"
                )
    except DataError:
        raise
    except _GZIP_ERRORS as exc:
        raise DataError(f"{path}: corrupt gzip data ({type(exc).__name__}: {_reason(exc)})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if images:
        return data.reshape(n, spec.height, spec.width, 1)
    return _check_labels(data, str(path), "labels", spec)


class IdxSource:
    """The four MNIST-style IDX files, each raw or gzipped, in the data dir, a subfolder or extra dirs."""

    def __init__(
        self,
        train_images: str = "train-images-idx3-ubyte",
        train_labels: str = "train-labels-idx1-ubyte",
        test_images: str = "t10k-images-idx3-ubyte",
        test_labels: str = "t10k-labels-idx1-ubyte",
        torchvision_dataset: str | None = None,
        subfolder: str = "",
        extra_dirs: Sequence[Path] = (),
        top_level: bool = True,
    ) -> None:
        """`top_level=False` keeps to `subfolder` (reading and downloading): for datasets such as Fashion-MNIST
        whose files have exactly MNIST's names."""
        if not top_level and not subfolder:
            raise ValueError("IdxSource(top_level=False) needs a subfolder")
        self.names = (train_images, train_labels, test_images, test_labels)
        self.torchvision_dataset = torchvision_dataset
        self.subfolder = subfolder
        self.extra_dirs = tuple(Path(d) for d in extra_dirs)
        self.top_level = top_level

    def __repr__(self) -> str:
        return f"IdxSource(torchvision_dataset={self.torchvision_dataset!r}, subfolder={self.subfolder!r})"

    def filenames(self) -> list[str]:
        prefix = "" if self.top_level else f"{self.subfolder}/"
        return [f"{prefix}{name}[.gz]" for name in self.names]

    def search_dirs(self, data_dir: Path) -> list[Path]:
        """Where the files are looked for, in order."""
        dirs = [Path(data_dir)] if self.top_level else []
        if self.subfolder:
            dirs.append(Path(data_dir) / self.subfolder)
        return dirs + list(self.extra_dirs)

    @staticmethod
    def _find(directory: Path, name: str) -> Path | None:
        for candidate in (directory / name, directory / f"{name}.gz"):  # raw preferred: faster to read
            if candidate.is_file():
                return candidate
        return None

    def _locate(self, data_dir: Path) -> tuple[Path, list[Path | None]] | None:
        """The first directory holding all four files, else the first holding any (read names the missing)."""
        partial = None
        for directory in self.search_dirs(data_dir):
            found = [self._find(directory, name) for name in self.names]
            if all(found):
                return directory, found
            if partial is None and any(found):
                partial = directory, found
        return partial

    def present(self, data_dir: Path) -> bool:
        return self._locate(data_dir) is not None

    def read(self, data_dir: Path, spec: ImageSetSpec) -> ImageArrays:
        located = self._locate(data_dir)
        if located is None:
            raise DataError(f"{data_dir}: no IDX files ({', '.join(self.filenames())})")
        directory, found = located
        missing = [f"{name}[.gz]" for name, path in zip(self.names, found, strict=True) if path is None]
        if missing:
            raise DataError(f"{directory}: incomplete IDX set: missing {', '.join(missing)}")
        paths: list[Path] = [p for p in found if p is not None]
        x_train = _read_idx(paths[0], True, spec)
        y_train = _read_idx(paths[1], False, spec)
        x_test = _read_idx(paths[2], True, spec)
        y_test = _read_idx(paths[3], False, spec)
        for x, y, xp, yp, expected in (
            (x_train, y_train, paths[0], paths[1], spec.train_count),
            (x_test, y_test, paths[2], paths[3], spec.test_count),
        ):
            if len(x) != len(y):
                raise DataError(f"{yp}: holds {len(y)} labels but {xp.name} holds {len(x)} images")
            if len(x) != expected:
                raise DataError(f"{xp}: holds {len(x)} images, expected {expected} for {spec.name}")
        return ImageArrays(x_train, y_train, x_test, y_test, str(directory), tuple(paths))

    def can_download(self) -> bool:
        return self.torchvision_dataset is not None

    def resources(self) -> list[DownloadResource]:
        """The official files from torchvision's `mirrors` and `resources`, in the order of `self.names`."""
        if self.torchvision_dataset is None:
            raise DataError("no download known for these IDX files")
        dataset = _torchvision_dataset(self.torchvision_dataset)
        mirrors = list(getattr(dataset, "mirrors", []))
        known = {Path(filename).name: md5 for filename, md5 in dataset.resources}
        out = []
        for name in self.names:
            filename = f"{name}.gz" if f"{name}.gz" in known else name
            if filename not in known:
                raise DataError(f"torchvision's {self.torchvision_dataset} lists no file {name}[.gz]")
            urls = tuple(f"{mirror.rstrip('/')}/{filename}" for mirror in mirrors)
            out.append(DownloadResource(filename, known[filename], urls))
        return out

    def download(self, data_dir: Path) -> None:
        _download_all(self.resources(), Path(data_dir) if self.top_level else Path(data_dir) / self.subfolder)


# ----------------------------------------------------------------------------------------------------
# CIFAR-10 python batches


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only what official CIFAR batch files need: dicts, lists, strings, ints, numpy arrays."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def _allowed_globals() -> dict[tuple[str, str], Any]:
    # Take the functions from numpy's own pickling, so no deprecated module path is imported.
    reconstruct = np.ndarray.__reduce__(np.empty(0, np.uint8))[0]
    frombuffer = np.ndarray.__reduce_ex__(np.empty(1, np.uint8), 5)[0]
    scalar = np.int64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    allowed[("_codecs", "encode")] = __import__("_codecs").encode  # bytes in protocol-2 pickles
    for builtins in ("builtins", "__builtin__"):
        for name, obj in (("dict", dict), ("list", list), ("bytes", bytes), ("bytearray", bytearray)):
            allowed[(builtins, name)] = obj
    return allowed


_RestrictedUnpickler._ALLOWED = _allowed_globals()


def _unpickle(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{where}: refused or corrupt pickle ({exc})") from exc
    except Exception as exc:  # malformed pickles raise many kinds of errors
        raise DataError(f"{where}: corrupt pickle ({type(exc).__name__}: {_reason(exc)})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: holds a {type(obj).__name__}, expected a dict (a CIFAR batch)")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _as_text(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


class CifarBatchesSource:
    """CIFAR-10 "python version": the folder `cifar-10-batches-py` or the archive `cifar-10-python.tar.gz`."""

    TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
    TEST_BATCH = "test_batch"
    META = "batches.meta"

    def __init__(
        self,
        folder: str = "cifar-10-batches-py",
        archive: str = "cifar-10-python.tar.gz",
        torchvision_dataset: str | None = "CIFAR10",
    ) -> None:
        self.folder = folder
        self.archive = archive
        self.torchvision_dataset = torchvision_dataset

    def __repr__(self) -> str:
        return f"CifarBatchesSource({self.folder!r}, {self.archive!r})"

    def _members(self) -> tuple[str, ...]:
        return (*self.TRAIN_BATCHES, self.TEST_BATCH, self.META)

    def filenames(self) -> list[str]:
        return [f"{self.folder}/", self.archive]

    def present(self, data_dir: Path) -> bool:
        return (Path(data_dir) / self.folder).is_dir() or (Path(data_dir) / self.archive).is_file()

    def read(self, data_dir: Path, spec: ImageSetSpec) -> ImageArrays:
        folder = Path(data_dir) / self.folder
        if folder.is_dir():
            blobs = self._read_folder(folder)
            where, files = str(folder), tuple(folder / name for name in self._members())
        else:
            archive = Path(data_dir) / self.archive
            blobs = self._read_archive(archive)
            where, files = str(archive), (archive,)
        return dataclasses.replace(self._decode(blobs, where, spec), files=files)

    def _read_folder(self, folder: Path) -> dict[str, tuple[str, bytes]]:
        blobs = {}
        for name in self._members():
            path = folder / name
            try:
                blobs[name] = (str(path), path.read_bytes())
            except FileNotFoundError:
                raise DataError(f"{folder}: incomplete CIFAR batches: missing {name}") from None
            except OSError as exc:
                raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        return blobs

    def _read_archive(self, archive: Path) -> dict[str, tuple[str, bytes]]:
        """The batch files read straight from the tar (nothing is extracted to disk)."""
        wanted = {f"{self.folder}/{name}": name for name in self._members()}
        blobs: dict[str, tuple[str, bytes]] = {}
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    name = wanted.get(member.name.removeprefix("./"))
                    if name is None or not member.isfile():
                        continue
                    f = tar.extractfile(member)
                    if f is None:  # pragma: no cover - isfile() members always have data
                        continue
                    with f:
                        blobs[name] = (f"{archive}:{member.name}", f.read())
        except (tarfile.TarError, *_GZIP_ERRORS) as exc:
            raise DataError(f"{archive}: corrupt archive ({type(exc).__name__}: {_reason(exc)})") from exc
        except OSError as exc:
            raise DataError(f"{archive}: cannot read ({exc.strerror or exc})") from exc
        missing = [name for name in self._members() if name not in blobs]
        if missing:
            raise DataError(
                f"{archive}: incomplete archive: missing {', '.join(f'{self.folder}/{m}' for m in missing)}"
            )
        return blobs

    def _decode_batch(self, where: str, data: bytes, spec: ImageSetSpec) -> tuple[np.ndarray, np.ndarray]:
        """One batch pickle, validated: uint8 rows (N, C*H*W) and int64 labels (N,)."""
        batch = _unpickle(data, where)
        for key in ("data", "labels"):
            if key not in batch:
                raise DataError(f"{where}: not a CIFAR batch: no {key!r} entry (holds {', '.join(map(str, batch))})")
        x, labels = batch["data"], batch["labels"]
        row = spec.channels * spec.height * spec.width
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
            kind = f"an array of {x.dtype}" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
            raise DataError(f"{where}: 'data' is {kind}, expected a uint8 array")
        if x.ndim != 2 or x.shape[1] != row:
            raise DataError(f"{where}: 'data' has shape {x.shape}, expected (N, {row})")
        if not isinstance(labels, (list, np.ndarray)):
            raise DataError(f"{where}: 'labels' is a {type(labels).__name__}, expected a list of integers")
        try:
            y = np.asarray(labels)
        except (ValueError, TypeError) as exc:
            raise DataError(f"{where}: 'labels' is not a list of integers ({exc})") from exc
        y = _check_labels(y, where, "labels", spec)
        if len(y) != len(x):
            raise DataError(f"{where}: 'data' has {len(x)} images but 'labels' has {len(y)} labels")
        return x, y

    @staticmethod
    def _to_hwc(rows: np.ndarray, spec: ImageSetSpec) -> np.ndarray:
        """Rows of channel planes (R, G, B), each row-major H x W -> contiguous (N, H, W, C)."""
        planes = rows.reshape(-1, spec.channels, spec.height, spec.width)
        return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))

    def _decode(self, blobs: dict[str, tuple[str, bytes]], where: str, spec: ImageSetSpec) -> ImageArrays:
        meta_where, meta_data = blobs[self.META]
        meta = _unpickle(meta_data, meta_where)
        if spec.class_names:
            names = meta.get("label_names")
            if not isinstance(names, list):
                raise DataError(f"{meta_where}: no 'label_names' list")
            names = [_as_text(n) for n in names]
            if names != list(spec.class_names):
                raise DataError(
                    f"{meta_where}: label_names {names} do not match {spec.name}'s {list(spec.class_names)}"
                )
        train = [self._decode_batch(*blobs[name], spec) for name in self.TRAIN_BATCHES]
        x_test, y_test = self._decode_batch(*blobs[self.TEST_BATCH], spec)
        x_train = self._to_hwc(np.concatenate([x for x, _ in train]), spec)
        y_train = np.concatenate([y for _, y in train])
        x_test = self._to_hwc(x_test, spec)
        if len(x_train) != spec.train_count:
            raise DataError(f"{where}: the training batches hold {len(x_train)} images, expected {spec.train_count}")
        if len(x_test) != spec.test_count:
            raise DataError(f"{where}: {self.TEST_BATCH} holds {len(x_test)} images, expected {spec.test_count}")
        return ImageArrays(x_train, y_train, x_test, y_test, where)

    def can_download(self) -> bool:
        return self.torchvision_dataset is not None

    def resources(self) -> list[DownloadResource]:
        """The official archive (torchvision's `url`, `filename` and `tgz_md5`)."""
        if self.torchvision_dataset is None:
            raise DataError("no download known for these CIFAR batches")
        dataset = _torchvision_dataset(self.torchvision_dataset)
        return [DownloadResource(self.archive, dataset.tgz_md5, (dataset.url,))]

    def download(self, data_dir: Path) -> None:
        """Download the archive (md5 verified); it is read directly, without extracting."""
        _download_all(self.resources(), Path(data_dir))


# ----------------------------------------------------------------------------------------------------
# Entry points


def default_data_dir(explicit: str | Path | None = None) -> Path:
    """`explicit`, else `$CNNKIT_DATA_DIR`, else `$XDG_CACHE_HOME/cnnkit/data` or `~/.cache/cnnkit/data`."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("CNNKIT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache) if cache and Path(cache).is_absolute() else Path.home() / ".cache"
    return base / "cnnkit" / "data"


def _looked_for(sources: Sequence[Source]) -> str:
    return ", ".join(name for source in sources for name in source.filenames())


def load_image_set(spec: ImageSetSpec, sources: Sequence[Source], data_dir: Path, download: bool = True) -> ImageArrays:
    """Read the first source present in `data_dir` (validated); if none is, download the first that can.

    A present source that fails validation is an error (no silent fallback to another source).
    """
    data_dir = Path(data_dir)
    for source in sources:
        if source.present(data_dir):
            return source.read(data_dir, spec)
    downloadable = [s for s in sources if s.can_download()]
    if not download:
        why = "download disabled"
    elif not downloadable:
        why = "no download available"
    else:
        source = downloadable[0]
        try:
            source.download(data_dir)
        except DataError as exc:
            why = f"download failed: {exc}"
        else:
            return source.read(data_dir, spec)
    raise DataError(
        f"no {spec.name} data in {data_dir} (looked for {_looked_for(sources)}); {why}. "
        "Put one of these files there or pass --data-dir"
    )


def describe_source_status(spec: ImageSetSpec, sources: Sequence[Source], data_dir: Path) -> list[str]:
    """One line per source: absent, or present and whether it validates (with counts)."""
    data_dir = Path(data_dir)
    lines = []
    for source in sources:
        names = ", ".join(source.filenames())
        if not source.present(data_dir):
            lines.append(f"{spec.name}: {names} absent from {data_dir}")
            continue
        try:
            arrays = source.read(data_dir, spec)
        except DataError as exc:
            lines.append(f"{spec.name}: INVALID: {exc}")
            continue
        classes = len(np.unique(np.concatenate([arrays.y_train, arrays.y_test])))
        lines.append(
            f"{spec.name}: {arrays.source} OK: train {len(arrays.x_train)}, test {len(arrays.x_test)}, "
            f"{spec.shape_text}, {classes} classes"
        )
    return lines
