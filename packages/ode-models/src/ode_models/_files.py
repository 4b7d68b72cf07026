"""Atomic file writes in a run folder, and the temporary files a kill leaves behind.

Every file of a run is written to a temporary file beside it,
``.NAME.XXXXXXXX.tmp``, flushed to disk and renamed over ``NAME``
(``os.replace``, atomic on POSIX and Windows), so a crash leaves the old
file or the new one, never a partial one. A kill (SIGKILL, power loss)
skips the clean-up and leaves the temporary file: :func:`temporary_files`
finds those, for the checkpoint's recovery and for removal.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "remove_quietly", "sync_folder", "temporary_files"]


def atomic_write(
    path: Path, write: Callable[[IO[bytes]], object], *, before_rename: Callable[[Path], object] | None = None
) -> None:
    """Write ``path`` through a temporary file in its folder and ``os.replace``.

    ``write(handle)`` fills the temporary file, which is then flushed and
    fsynced; ``before_rename(temporary_path)``, if given, runs between that
    and the rename (a test hook: a kill at that moment). A failure removes
    the temporary file and leaves ``path`` as it was.
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(OSError):  # mkstemp's 0600 -> the usual permissions of a new file
            os.chmod(temp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if before_rename is not None:
            before_rename(Path(temp))
        os.replace(temp, path)
    except BaseException:
        remove_quietly(Path(temp))
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Persist renames in ``folder`` (fsync of the directory; skipped where unsupported)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def temporary_files(path: Path) -> list[Path]:
    """The temporary files :func:`atomic_write` made for ``path`` and did not rename or remove, by name."""
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def remove_quietly(path: Path) -> None:
    """Delete ``path`` if it is there; an error (already gone, no permission) is ignored."""
    with contextlib.suppress(OSError):
        path.unlink()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
