"""The code version recorded on every result row: package version plus a hash of the package source."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from cvn_assets import __version__
from cvn_assets.core.hashing import source_tree_version


@cache
def code_version() -> str:
    return f"{__version__}+{source_tree_version(Path(__file__).parent)}"
