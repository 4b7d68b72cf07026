"""Progress of a run on its log stream: tqdm's bar on a terminal, plain lines elsewhere.

Where the log stream is a terminal (``stream.isatty()``) and tqdm is
installed (the ``progress`` extra), each epoch shows a tqdm bar with the
running loss, accuracy, NFE and throughput, cleared when the epoch ends.
Elsewhere (a file, a pipe, a batch job's log) or without tqdm, nothing is
drawn: only the one summary line per epoch, which every case writes.
"""

from __future__ import annotations

from typing import IO, Any

__all__ = ["EpochProgress", "is_terminal"]


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is attached to a terminal (``False`` when it cannot tell)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class EpochProgress:
    """One epoch's progress: a bar while it runs (terminal and tqdm only), a summary line at the end.

    Parameters
    ----------
    label : str
        The bar's description, ``"epoch 3/10"``.
    total : int
        Batches in the epoch.
    stream : text stream, optional
        Where to write (``None``: nothing, on ranks other than 0).
    bar : bool
        Draw the bar where possible (``--no-progress`` turns it off).
    """

    refresh_s = 0.2
    """Least seconds between two redraws of the bar."""

    def __init__(self, label: str, total: int, stream: IO[str] | None, *, bar: bool = True) -> None:
        self.stream = stream
        self._bar: Any = None
        tqdm = _tqdm() if bar and stream is not None and is_terminal(stream) else None
        if tqdm is not None:
            self._bar = tqdm(
                total=total,
                desc=label,
                file=stream,
                leave=False,
                unit="batch",
                dynamic_ncols=True,
                mininterval=self.refresh_s,
            )

    @property
    def shows_bar(self) -> bool:
        """Whether a bar is drawn (whether :meth:`step`'s status text is shown)."""
        return self._bar is not None

    def step(self, status: str = "") -> None:
        """One more batch done; ``status`` (loss, NFE, ...) goes after the bar.

        Parameters
        ----------
        status : str
            Text shown after the bar, replacing the previous one.
        """
        if self._bar is not None:
            self._bar.set_postfix_str(status, refresh=False)
            self._bar.update(1)

    def close(self, summary: str) -> None:
        """Clear the bar and write the epoch's ``summary`` line.

        Parameters
        ----------
        summary : str
            One line, without its newline.
        """
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.stream is not None:
            self.stream.write(summary + "\n")
            self.stream.flush()
