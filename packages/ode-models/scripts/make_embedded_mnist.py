"""Regenerate ``src/ode_models/data/mnist_subset.npz`` from the official MNIST files.

Usage::

    python packages/ode-models/scripts/make_embedded_mnist.py [RAW_DIR] [--train N] [--test M]

RAW_DIR holds the four raw IDX files (plain or ``.gz``); by default
``<repo root>/../shared/data/MNIST/raw``. The archive holds the first N
training and the first M test examples (default 4000 and 1000) as uint8
arrays ``train_images`` (N, 28, 28), ``train_labels`` (N,), ``test_images``,
``test_labels``, LZMA-compressed inside a standard ``.npz`` (``numpy.load``
reads it). Entries carry a fixed timestamp, so reruns give identical bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = Path(__file__).resolve().parents[1]
REPO_ROOT = PACKAGE.parents[1]
sys.path.insert(0, str(PACKAGE / "src"))

from ode_models._data import _MNIST_FILES, _find_file, _read_mnist_pair  # noqa: E402

OUTPUT = PACKAGE / "src" / "ode_models" / "data" / "mnist_subset.npz"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw_dir", nargs="?", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "MNIST" / "raw")
    parser.add_argument("--train", type=int, default=4000, help="first N training examples (default 4000)")
    parser.add_argument("--test", type=int, default=1000, help="first M test examples (default 1000)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    arrays: dict[str, np.ndarray] = {}
    for split, count in (("train", args.train), ("test", args.test)):
        paths = [_find_file(args.raw_dir, name) for name in _MNIST_FILES[split]]
        if paths[0] is None or paths[1] is None:
            raise SystemExit(f"raw_dir: {_MNIST_FILES[split]} (plain or .gz) not found in {args.raw_dir}")
        images, labels = _read_mnist_pair(paths[0], paths[1], count)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.output, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_LZMA
            archive.writestr(info, buffer.getvalue())
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, sha256 {digest}): {shapes}")


if __name__ == "__main__":
    main()
