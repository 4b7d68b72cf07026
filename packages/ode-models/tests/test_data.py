from __future__ import annotations

import gzip
import importlib.resources
import importlib.util
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from ode_models import (
    MNIST_MEAN,
    MNIST_STD,
    ImageDataset,
    load_cifar10,
    load_dataset,
    load_embedded_mnist,
    load_mnist,
    read_idx,
)

# <repo root>/../shared/data/MNIST/raw: read only, never written to.
REAL_MNIST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "MNIST" / "raw"
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
needs_real_mnist = pytest.mark.skipif(
    not all((REAL_MNIST / f"{n}.gz").is_file() or (REAL_MNIST / n).is_file() for n in MNIST_NAMES),
    reason=f"the official MNIST files are not in {REAL_MNIST}",
)


def real_file(name: str) -> Path:
    plain = REAL_MNIST / name
    return plain if plain.is_file() else REAL_MNIST / f"{name}.gz"


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(directory: Path, n: int = 5, *, gz: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "t10k"):
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
    return images, labels


# --- IDX -------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_plain_and_gzipped(tmp_path: Path, gz: bool) -> None:
    images, labels = write_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path, "train", normalize=False)
    assert len(data) == 5
    assert torch.equal(data.images, torch.from_numpy(images)[:, None])
    assert torch.equal(data.labels, torch.from_numpy(labels).long())
    x, y = data[2]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.testing.assert_close(x, torch.from_numpy(images[2]).float()[None] / 255)


def test_idx_other_dtypes(tmp_path: Path) -> None:
    array = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(array, 0x0C))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda b: b[:-10], r"truncated: header says shape \(5, 28, 28\)"),
        (lambda b: b + b"\0", "has trailing bytes"),
        (lambda b: b"\x00\x00\x08\x03\x00", "truncated IDX header"),
        (lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
        (lambda b: b[:2] + b"\x42" + b[3:], "not an IDX file"),
        (lambda b: b"", "not an IDX file"),
    ],
)
def test_corrupt_idx_names_the_file(tmp_path: Path, mangle, match: str) -> None:  # type: ignore[no-untyped-def]
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(ValueError, match=match) as info:
        load_mnist(tmp_path)
    assert str(path) in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match="corrupt or truncated gzip") as info:
        load_mnist(tmp_path)
    assert str(path) in str(info.value)


def test_mismatched_mnist_files(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="4 labels for 5 images"):
        load_mnist(tmp_path, "test")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 32, 32), np.uint8)))
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, 28, 28\)"):
        load_mnist(tmp_path, "train")


def test_torchvision_layout_and_limit(tmp_path: Path) -> None:
    images, _ = write_mnist(tmp_path / "MNIST" / "raw", n=7, gz=True)
    data = load_mnist(tmp_path, "test", limit=3)
    assert len(data) == 3
    assert torch.equal(data.images[:, 0], torch.from_numpy(images[:3]))


def test_missing_mnist_names_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MNIST train data not found in data dir") as info:
        load_mnist(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "download=True" in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision would try to download")
def test_download_without_torchvision(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match="download: fetching MNIST needs torchvision"):
        load_mnist(tmp_path, download=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"split": "val"}, "split: expected one of train, test"), ({"limit": 0}, "limit: expected a positive int")],
)
def test_bad_loader_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match=match):
        load_mnist(tmp_path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dataset: unknown dataset 'svhn'"):
        load_dataset("svhn", tmp_path)


@needs_real_mnist
def test_real_mnist() -> None:
    train = load_mnist(REAL_MNIST, "train")
    test = load_mnist(REAL_MNIST, "test", limit=100)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert len(test) == 100
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    x, _ = train.batch(torch.arange(1000))
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1


@needs_real_mnist
def test_real_mnist_plain_copy(tmp_path: Path) -> None:
    # Decompressed copies in tmp_path (never in the shared directory).
    for name in MNIST_NAMES[2:]:
        with gzip.open(real_file(name)) as source, (tmp_path / name).open("wb") as target:
            shutil.copyfileobj(source, target)
    plain = load_mnist(tmp_path, "test")
    assert torch.equal(plain.images, load_mnist(REAL_MNIST, "test").images)


# --- embedded subset --------------------------------------------------------


def test_embedded_mnist_shapes() -> None:
    train, test = load_embedded_mnist("train"), load_embedded_mnist("test", limit=10)
    assert train.images.shape == (4000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels.shape == (4000,) and int(train.labels.max()) == 9
    assert len(test) == 10
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.labels.tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    x, y = train.batch([0, 1])
    assert x.shape == (2, 1, 28, 28) and y.shape == (2,)
    archive = importlib.resources.files("ode_models").joinpath("data", "mnist_subset.npz")
    assert len(archive.read_bytes()) < 1_000_000  # keep the wheel small


@needs_real_mnist
def test_embedded_mnist_equals_the_official_files() -> None:
    for split, count in (("train", 4000), ("test", 1000)):
        embedded = load_embedded_mnist(split)
        real = load_mnist(REAL_MNIST, split, limit=count)
        assert torch.equal(embedded.images, real.images)
        assert torch.equal(embedded.labels, real.labels)


# --- CIFAR-10 ----------------------------------------------------------------


def write_cifar_batch(path: Path, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    batch = {
        b"batch_label": b"synthetic batch",
        b"labels": labels,
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(batch, handle, protocol=2)
    return data, labels


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    directory = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        write_cifar_batch(directory / f"data_batch_{i}", 4, seed=i)
    write_cifar_batch(directory / "test_batch", 6, seed=0)
    return tmp_path


def test_synthetic_cifar_batches(cifar_root: Path) -> None:
    train = load_cifar10(cifar_root, "train", normalize=False)
    assert train.images.shape == (20, 3, 32, 32) and train.labels.shape == (20,)
    data, labels = write_cifar_batch(cifar_root / "check", 4, seed=2)  # same content as data_batch_2
    assert torch.equal(train.images[4:8], torch.from_numpy(data.reshape(4, 3, 32, 32)))
    assert train.labels[4:8].tolist() == labels
    # Row-major R, G, B planes of 32 x 32: pixel (row 1, col 2) of the green plane.
    assert train.images[4, 1, 1, 2] == data[0, 1024 + 32 + 2]
    test = load_dataset("cifar10", cifar_root / "cifar-10-batches-py", "test", limit=5)
    assert test.images.shape == (5, 3, 32, 32)
    x, y = test.batch(range(5))
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert load_cifar10(cifar_root, limit=6).images.shape[0] == 6


def test_cifar_errors(cifar_root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="CIFAR-10 train data not found in data dir"):
        load_cifar10(tmp_path / "empty")
    bad = cifar_root / "cifar-10-batches-py" / "test_batch"
    with bad.open("wb") as handle:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(ValueError, match=r"expected b'data' uint8 of shape \(N, 3072\)") as info:
        load_cifar10(cifar_root, "test")
    assert str(bad) in str(info.value)
    with bad.open("wb") as handle:
        pickle.dump({b"data": shutil.rmtree, b"labels": []}, handle)
    with pytest.raises(ValueError, match=r"global shutil.rmtree is not allowed"):
        load_cifar10(cifar_root, "test")


# --- augmentation and normalisation ----------------------------------------------


def test_cifar_augmentation(cifar_root: Path) -> None:
    plain = load_cifar10(cifar_root, normalize=False)
    augmented = load_cifar10(cifar_root, augment=True, normalize=False)
    assert augmented.augment and not plain.augment
    assert (augmented.crop_padding, augmented.flip) == (4, True)
    generator = torch.Generator().manual_seed(0)
    x, _ = augmented.batch(torch.arange(20), generator=generator)
    assert x.shape == (20, 3, 32, 32)
    x_again, _ = augmented.batch(torch.arange(20), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x_again)
    reference, _ = plain.batch(torch.arange(20))
    assert not torch.equal(x, reference)


def test_crop_and_flip_geometry() -> None:
    images = torch.arange(2 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4)
    flipped = ImageDataset(images, torch.zeros(2), flip=True)
    cropped = ImageDataset(images, torch.zeros(2), crop_padding=1)
    for seed in range(5):
        x, _ = flipped.batch([0, 1], torch.Generator().manual_seed(seed))
        for k in range(2):
            original = images[k].float() / 255
            assert torch.equal(x[k], original) or torch.equal(x[k], original.flip(-1))
        x, _ = cropped.batch([0, 1], torch.Generator().manual_seed(seed))
        padded = torch.nn.functional.pad(images.float() / 255, (1, 1, 1, 1))
        for k in range(2):
            windows = [padded[k, :, i : i + 4, j : j + 4] for i in range(3) for j in range(3)]
            assert any(torch.equal(x[k], w) for w in windows)


def test_mnist_normalisation_and_augmentation() -> None:
    data = load_embedded_mnist("test", limit=8, augment=True)
    assert (data.crop_padding, data.flip) == (4, False)
    raw = load_embedded_mnist("test", limit=8, normalize=False)
    x, _ = raw.batch(range(8))
    x_normalized, _ = load_embedded_mnist("test", limit=8).batch(range(8))
    torch.testing.assert_close(x_normalized, (x - MNIST_MEAN[0]) / MNIST_STD[0])
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_cifar_batch_pickled_by_numpy1(tmp_path: Path) -> None:
    # The official batches name numpy.core.multiarray (NumPy 1), renamed
    # numpy._core in NumPy 2: they must load without a deprecation warning.
    data, labels = write_cifar_batch(tmp_path / "test_batch", 3, seed=4)
    raw = (tmp_path / "test_batch").read_bytes()
    if b"numpy._core.multiarray" in raw:
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (tmp_path / "test_batch").write_bytes(raw)
    assert b"numpy.core.multiarray" in raw
    test = load_cifar10(tmp_path, "test", normalize=False)
    assert torch.equal(test.images, torch.from_numpy(data.reshape(3, 3, 32, 32)))
    assert test.labels.tolist() == labels
