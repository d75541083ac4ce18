"""Errors that name what is wrong: the file, the row or the config key."""

from __future__ import annotations


class CvnError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(CvnError):
    """The sweep config is invalid; the message names the key."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}config key '{key}': {problem}")


class DataValidationError(CvnError):
    """Input data (OHLCV bars, realized fills) was rejected; the message names the file and, where known,
    the 1-based data row and the column."""

    def __init__(self, source: str, problem: str, row: int | None = None, column: str | None = None) -> None:
        self.source = source
        self.problem = problem
        self.row = row
        self.column = column
        at = f" row {row}:" if row is not None else ""
        col = f" column '{column}':" if column is not None else ""
        one_line = problem.replace("\r", "\\r").replace("\n", "\\n")  # a quoted field may hold a newline
        super().__init__(f"{source}:{at}{col} {one_line}")


class SourceUnreachableError(DataValidationError):
    """A data source could not be read (network, timeout, credentials); rejected like bad data."""


class StoreUnavailableError(CvnError):
    """The results database cannot be reached; the message names it with its password masked."""


class DataCoverageError(CvnError):
    """A crypto's bars do not cover the fold a partition asks for; the message says what to re-materialize."""


class DatasetError(CvnError):
    """A fold's window holds too few usable rows (or one class only) to train on; the message names it."""
