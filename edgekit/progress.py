"""A small progress bar on stderr, drawn only when stderr is a terminal.

Logs and CI output stay clean; people at a terminal see the work move.

Example:
    >>> with Progress("calibrating", total=3) as bar:
    ...     for _ in range(3):
    ...         bar.advance()
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int | None, *, enabled: bool | None = None, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._shown = -1
        self._start = time.monotonic()

    def __enter__(self) -> "Progress":
        self._draw(force=True)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if self.done == self._shown or (not force and now - self._last < 0.1 and self.done != self.total):
            return
        self._last, self._shown = now, self.done
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            text = f"\r{self.label:14} [{bar:30}] {self.done}/{self.total}{self._eta(now)}"
        else:
            text = f"\r{self.label:14} {self.done}"
        self.stream.write(text)
        self.stream.flush()

    def _eta(self, now: float) -> str:
        """Remaining time at the rate so far; blank until there is a rate, padded so a shorter text overwrites."""
        if not 0 < self.done < self.total:
            return " " * 12
        left = (now - self._start) / self.done * (self.total - self.done)
        return f"  ETA {int(left // 60)}:{int(left % 60):02d}".ljust(12)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
