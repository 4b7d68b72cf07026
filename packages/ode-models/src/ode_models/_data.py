"""MNIST and CIFAR-10 read offline from their standard files.

MNIST comes from the raw IDX files (``train-images-idx3-ubyte[.gz]`` ...),
parsed here with NumPy; CIFAR-10 from the python pickle batches
(``cifar-10-batches-py/data_batch_1`` ...). Both are held in memory as
``uint8`` and turned into normalised ``float32`` tensors per example or per
batch. torchvision is used only to download missing files, and only when
asked to (``download=True``).
"""

from __future__ import annotations

import gzip
import importlib
import importlib.resources
import math
import os
import pickle
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "EMBEDDED_MNIST",
    "MNIST_MEAN",
    "MNIST_STD",
    "ImageDataset",
    "load_cifar10",
    "load_dataset",
    "load_embedded_mnist",
    "load_mnist",
    "read_idx",
]

MNIST_MEAN = (0.1307,)
"""Per-channel mean of the MNIST training images (pixels in [0, 1]), used by ``normalize=True``."""
MNIST_STD = (0.3081,)
"""Per-channel standard deviation of the MNIST training images (pixels in [0, 1])."""
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
"""Per-channel (R, G, B) mean of the CIFAR-10 training images (pixels in [0, 1])."""
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
"""Per-channel (R, G, B) standard deviation of the CIFAR-10 training images (pixels in [0, 1])."""

EMBEDDED_MNIST = "mnist_subset.npz"
"""File name of the MNIST subset shipped in ``ode_models/data/``."""

_SPLITS = ("train", "test")
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}

# IDX type codes (third magic byte) and their big-endian NumPy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


class ImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Labelled images held as ``uint8``, returned normalised (and augmented).

    Parameters
    ----------
    images : Tensor, shape (N, C, H, W), uint8
    labels : Tensor, shape (N,), int64
    mean, std : sequence of float, length C
        Per-channel normalisation of the ``[0, 1]`` pixel values; ``None``
        leaves them in ``[0, 1]``.
    crop_padding : int
        Training augmentation: zero-pad by this many pixels and crop back to
        H x W at a random offset (0: no cropping).
    flip : bool
        Training augmentation: flip horizontally with probability 1/2.

    Indexing gives ``(image (C, H, W) float32, label () int64)``;
    :meth:`batch` does the same for many indices at once, vectorised.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        crop_padding: int = 0,
        flip: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images: expected a uint8 tensor of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels: expected shape ({images.shape[0]},), got {tuple(labels.shape)}")
        if crop_padding < 0:
            raise ValueError(f"crop_padding: expected >= 0, got {crop_padding}")
        channels = images.shape[1]
        self.images = images
        self.labels = labels.to(torch.int64)
        self.crop_padding = crop_padding
        self.flip = flip
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None
        if (mean is None) != (std is None):
            raise ValueError("mean, std: give both or neither")
        if mean is not None and std is not None:
            if len(mean) != channels or len(std) != channels:
                raise ValueError(f"mean, std: expected {channels} values each, got {len(mean)} and {len(std)}")
            self._mean = torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1)
            self._std = torch.tensor(std, dtype=torch.float32).view(1, channels, 1, 1)

    @property
    def augment(self) -> bool:
        """Whether examples are randomly cropped or flipped."""
        return self.crop_padding > 0 or self.flip

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.batch(torch.tensor([index]))
        return images[0], labels[0]

    def batch(
        self, indices: torch.Tensor | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``indices`` as one batch.

        Parameters
        ----------
        indices : Tensor or sequence of int, shape (B,)
        generator : torch.Generator, optional
            Randomness of the augmentation.

        Returns
        -------
        images : Tensor, shape (B, C, H, W), float32
        labels : Tensor, shape (B,), int64
        """
        index = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images[index]
        if self.crop_padding > 0:
            images = _random_crop(images, self.crop_padding, generator)
        if self.flip:
            flipped = torch.rand(images.shape[0], generator=generator) < 0.5
            images = torch.where(flipped[:, None, None, None], images.flip(-1), images)
        values = images.to(torch.float32) / 255.0
        if self._mean is not None and self._std is not None:
            values = (values - self._mean) / self._std
        return values, self.labels[index]


def _random_crop(images: torch.Tensor, padding: int, generator: torch.Generator | None) -> torch.Tensor:
    """Zero-pad (B, C, H, W) by ``padding`` and crop H x W at random offsets."""
    batch, channels, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    rows = top[:, None] + torch.arange(height)  # (B, H)
    cols = left[:, None] + torch.arange(width)  # (B, W)
    return padded[
        torch.arange(batch)[:, None, None, None],
        torch.arange(channels)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split: expected one of {', '.join(_SPLITS)}, got {split!r}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: expected a positive int or None, got {limit!r}")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray[Any, Any]:
    """Read an IDX file (the MNIST format), gzipped or not.

    Parameters
    ----------
    path : path-like
        Gzip is recognised by its magic bytes, not the file name.

    Returns
    -------
    ndarray
        Shape and dtype from the file's header (MNIST: uint8 images
        (N, 28, 28), labels (N,)), in native byte order.

    Raises
    ------
    ValueError
        The file is not IDX, is truncated or has trailing bytes, or its gzip
        stream is corrupt; the message names the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {header} expected)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: {problem}: header says shape {shape} ({expected} bytes), file has {len(raw)} bytes")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    # A writable copy in native byte order (frombuffer's view of bytes is read-only).
    return array.astype(dtype.newbyteorder("="), copy=True)


def _find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _mnist_dirs(root: Path) -> list[Path]:
    # The directory itself, or torchvision's layout root/MNIST/raw.
    return [root, root / "MNIST" / "raw", root / "raw"]


def _find_mnist(root: Path, split: str) -> tuple[Path, Path] | None:
    images_name, labels_name = _MNIST_FILES[split]
    for directory in _mnist_dirs(root):
        images, labels = _find_file(directory, images_name), _find_file(directory, labels_name)
        if images is not None and labels is not None:
            return images, labels
    return None


def _read_mnist_pair(images_path: Path, labels_path: Path, limit: int | None) -> tuple[np.ndarray[Any, Any], ...]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be 0..9, found {int(labels.max())}")
    if limit is not None:
        images, labels = images[:limit].copy(), labels[:limit].copy()
    return images, labels


def _torchvision(what: str) -> Any:
    try:
        return importlib.import_module("torchvision")
    except ImportError as exc:
        raise ImportError(
            f"download: fetching {what} needs torchvision (pip install 'ode-models[download]'), which is not installed"
        ) from exc


def _make_dataset(
    images: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    mean: Sequence[float],
    std: Sequence[float],
    normalize: bool,
    crop_padding: int,
    flip: bool,
) -> ImageDataset:
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(images)),
        torch.from_numpy(labels.astype(np.int64)),
        mean=mean if normalize else None,
        std=std if normalize else None,
        crop_padding=crop_padding,
        flip=flip,
    )


def _mnist_dataset(
    images: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], augment: bool, normalize: bool
) -> ImageDataset:
    # Chen et al.'s odenet_mnist.py augments MNIST by random 4-pixel crops;
    # digits are not mirror-symmetric, so no flips.
    return _make_dataset(
        images[:, None], labels, MNIST_MEAN, MNIST_STD, normalize, crop_padding=4 if augment else 0, flip=False
    )


def load_mnist(
    root: str | os.PathLike[str],
    split: str = "train",
    *,
    limit: int | None = None,
    augment: bool = False,
    normalize: bool = True,
    download: bool = False,
) -> ImageDataset:
    """MNIST from the raw IDX files in ``root``.

    Parameters
    ----------
    root : path-like
        Directory holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each plain or ``.gz``; torchvision's
        layout ``root/MNIST/raw/`` is accepted too. Never written to unless
        ``download`` is set and the files are missing.
    split : {"train", "test"}
    limit : int, optional
        Keep the first ``limit`` examples.
    augment : bool
        Random crops after zero-padding by 4 pixels (for training).
    normalize : bool
        Standardise with the MNIST mean and std; otherwise values in [0, 1].
    download : bool
        If the files are missing, fetch them with torchvision into
        ``root/MNIST/raw``. Off by default: nothing is downloaded.

    Returns
    -------
    ImageDataset
        Images (N, 1, 28, 28), labels (N,).

    Raises
    ------
    FileNotFoundError
        The files are not in ``root`` and ``download`` is off.
    ValueError
        A file is corrupt or truncated (the message names it).
    """
    _check_split(split)
    _check_limit(limit)
    directory = Path(root)
    found = _find_mnist(directory, split)
    if found is None and download:
        _torchvision("MNIST").datasets.MNIST(str(directory), train=split == "train", download=True)
        found = _find_mnist(directory, split)
    if found is None:
        looked = ", ".join(str(d) for d in _mnist_dirs(directory))
        names = " and ".join(f"{n}[.gz]" for n in _MNIST_FILES[split])
        raise FileNotFoundError(
            f"root: MNIST {split} data not found in data dir {str(directory)!r}: looked for {names} in {looked}; "
            "pass download=True to fetch it, or use load_embedded_mnist() for the bundled subset"
        )
    images, labels = _read_mnist_pair(*found, limit)
    return _mnist_dataset(images, labels, augment, normalize)


def load_embedded_mnist(
    split: str = "train", *, limit: int | None = None, augment: bool = False, normalize: bool = True
) -> ImageDataset:
    """The small MNIST subset bundled with the package (works offline).

    The first 4000 training and the first 1000 test images of the official
    MNIST files (LeCun, Cortes & Burges); see ``ode_models/data/README.md``.

    Parameters
    ----------
    split : {"train", "test"}
    limit, augment, normalize
        As in :func:`load_mnist`.

    Returns
    -------
    ImageDataset
        Images (N, 1, 28, 28) with N <= 4000 (train) or 1000 (test).

    Examples
    --------
    >>> import ode_models
    >>> data = ode_models.load_embedded_mnist("test")
    >>> len(data)
    1000
    >>> images, labels = data.batch(range(8))
    >>> images.shape, images.dtype, labels.shape
    (torch.Size([8, 1, 28, 28]), torch.float32, torch.Size([8]))
    """
    _check_split(split)
    _check_limit(limit)
    resource = importlib.resources.files("ode_models").joinpath("data", EMBEDDED_MNIST)
    with resource.open("rb") as handle, np.load(handle) as archive:
        images = archive[f"{split}_images"]
        labels = archive[f"{split}_labels"]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return _mnist_dataset(images, labels, augment, normalize)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batches' dicts of arrays, and nothing else."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module == "numpy.core.multiarray":
            # The official files predate NumPy 2's rename to numpy._core.
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    try:
        with path.open("rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a readable CIFAR-10 batch ({exc})") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path}: expected a dict with b'data' and b'labels'")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: expected b'data' uint8 of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: expected {data.shape[0]} integer labels, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be 0..9, found {int(labels.min())}..{int(labels.max())}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_dirs(root: Path) -> list[Path]:
    return [root / _CIFAR_DIR, root]


def _find_cifar(root: Path, split: str) -> list[Path] | None:
    for directory in _cifar_dirs(root):
        paths = [directory / name for name in _CIFAR_FILES[split]]
        if all(p.is_file() for p in paths):
            return paths
    return None


def load_cifar10(
    root: str | os.PathLike[str],
    split: str = "train",
    *,
    limit: int | None = None,
    augment: bool = False,
    normalize: bool = True,
    download: bool = False,
) -> ImageDataset:
    """CIFAR-10 from the python pickle batches in ``root``.

    Parameters
    ----------
    root : path-like
        Directory holding ``cifar-10-batches-py/`` (``data_batch_1`` to
        ``data_batch_5``, ``test_batch``), or that directory itself.
    split : {"train", "test"}
    limit : int, optional
        Keep the first ``limit`` examples (only the batches needed are read).
    augment : bool
        Random 32 x 32 crops after zero-padding by 4 pixels, and horizontal
        flips (Chen et al. 2018's CIFAR-10 setup, for training).
    normalize : bool
        Standardise with the CIFAR-10 channel means and stds.
    download : bool
        If the batches are missing, fetch them with torchvision into
        ``root``. Off by default.

    Returns
    -------
    ImageDataset
        Images (N, 3, 32, 32), labels (N,).

    Raises
    ------
    FileNotFoundError
        The batches are not in ``root`` and ``download`` is off.
    ValueError
        A batch is not in the CIFAR-10 format (the message names it).
    """
    _check_split(split)
    _check_limit(limit)
    directory = Path(root)
    paths = _find_cifar(directory, split)
    if paths is None and download:
        _torchvision("CIFAR-10").datasets.CIFAR10(str(directory), train=split == "train", download=True)
        paths = _find_cifar(directory, split)
    if paths is None:
        looked = ", ".join(str(d) for d in _cifar_dirs(directory))
        names = ", ".join(_CIFAR_FILES[split])
        raise FileNotFoundError(
            f"root: CIFAR-10 {split} data not found in data dir {str(directory)!r}: looked for {names} in {looked}; "
            "pass download=True to fetch it"
        )
    images: list[np.ndarray[Any, Any]] = []
    labels: list[np.ndarray[Any, Any]] = []
    count = 0
    for path in paths:
        if limit is not None and count >= limit:
            break
        batch_images, batch_labels = _read_cifar_batch(path)
        images.append(batch_images)
        labels.append(batch_labels)
        count += batch_images.shape[0]
    all_images, all_labels = np.concatenate(images), np.concatenate(labels)
    if limit is not None:
        all_images, all_labels = all_images[:limit], all_labels[:limit]
    return _make_dataset(
        all_images,
        all_labels,
        CIFAR10_MEAN,
        CIFAR10_STD,
        normalize,
        crop_padding=4 if augment else 0,
        flip=augment,
    )


def load_dataset(
    dataset: str,
    root: str | os.PathLike[str],
    split: str = "train",
    *,
    limit: int | None = None,
    augment: bool = False,
    normalize: bool = True,
    download: bool = False,
) -> ImageDataset:
    """:func:`load_mnist` or :func:`load_cifar10` by name (``"mnist"``, ``"cifar10"``).

    Parameters
    ----------
    dataset : {"mnist", "cifar10"}
        Which loader to call.
    root : str or PathLike
        The data folder, as the loader expects it.
    split : {"train", "test"}
        Which split to read.
    limit, augment, normalize, download
        Passed on to the loader.

    Returns
    -------
    ImageDataset
    """
    loaders = {"mnist": load_mnist, "cifar10": load_cifar10}
    if dataset not in loaders:
        raise ValueError(f"dataset: unknown dataset {dataset!r}; valid names are {', '.join(loaders)}")
    return loaders[dataset](root, split, limit=limit, augment=augment, normalize=normalize, download=download)
