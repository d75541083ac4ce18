"""The process's peak resident memory (RSS), resettable, so each step can record what it used.

Linux keeps the peak as VmHWM in /proc/self/status; writing "5" to /proc/self/clear_refs resets it to the
current RSS (kernel 4.0+). Where that is not allowed (another OS, a locked-down /proc), the peak comes
from `resource.getrusage`, which cannot be reset: the reading is then the peak since the process started
and says so (`since_reset` False), an upper bound of the step's own peak.

    with measure_peak() as peak:
        ...  # the step's work
    peak.peak_bytes, peak.since_reset

Each reset first folds the peak so far into the process's own record, so `process_peak()` still gives the
peak of the whole process (a whole run, in the in-process executor) however often steps reset it.
"""

from __future__ import annotations

import re
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_HWM = "5"  # proc(5): "reset the peak resident set size ("high water mark") to the current value"
_KIB = 1024
_before_resets = [0]  # the highest peak the process reached before its last reset, in bytes


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _rusage_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * _KIB  # bytes on macOS, KiB elsewhere


def reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS; False where the kernel does not allow it (the
    next `read_peak` is then the peak since the process started)."""
    _before_resets[0] = max(_before_resets[0], read_peak())
    try:
        _CLEAR_REFS.write_text(_RESET_HWM)
    except OSError:
        return False
    return True


def read_peak() -> int:
    """The process's peak RSS in bytes since the last successful `reset_peak` (else since it started)."""
    hwm = _status_kib("VmHWM")
    return hwm * _KIB if hwm is not None else _rusage_peak_bytes()


def process_peak() -> int:
    """The process's peak RSS in bytes since it started, across every `reset_peak`."""
    return max(_before_resets[0], read_peak())


def current_rss() -> int:
    """The process's resident memory now, in bytes (the peak where /proc is not there to ask)."""
    rss = _status_kib("VmRSS")
    return rss * _KIB if rss is not None else _rusage_peak_bytes()


@dataclass
class PeakReading:
    """Filled when the `measure_peak` block ends: the peak RSS during it, and the RSS it started from."""

    since_reset: bool
    start_bytes: int
    peak_bytes: int = 0

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / _KIB**3


@contextmanager
def measure_peak() -> Iterator[PeakReading]:
    """The peak RSS of the process while the block runs (threads included: RSS is per process)."""
    reading = PeakReading(since_reset=reset_peak(), start_bytes=current_rss())
    try:
        yield reading
    finally:
        reading.peak_bytes = read_peak()
