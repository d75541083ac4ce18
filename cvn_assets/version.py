"""Code versions.

`code_version()` is recorded on every result row: the package version plus a hash of the package source.
`step_version(...)` is a Dagster asset's code version: a hash of the step function's own source and of
every `cvn_assets` module it reaches through imports (what computes the asset), so editing the CLI or
another asset's code leaves a partition fresh while editing the feature code marks features stale.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from cvn_assets import __version__
from cvn_assets.core.hashing import source_tree_version

PACKAGE = "cvn_assets"
PACKAGE_DIR = Path(__file__).parent


@cache
def code_version() -> str:
    return f"{__version__}+{source_tree_version(PACKAGE_DIR)}"


@cache
def _module_path(name: str) -> Path | None:
    """The source file of a cvn_assets module, found without importing it (so every process, whatever it
    has imported, computes the same versions); None for a name that is not a module."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


@cache
def _imports_of(module_name: str) -> frozenset[str]:
    """The cvn_assets modules a module imports (at any level of its source)."""
    path = _module_path(module_name)
    if path is None or not path.is_file():
        return frozenset()
    found: set[str] = set()
    for node in _import_statements(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n.split(".")[0] == PACKAGE and _module_path(n) is not None}
    return frozenset(found)


STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def _import_statements(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth: an import is a statement, so only statement lists are
    descended (a tenth of `ast.walk`'s nodes; this runs in every run's process, for every asset)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            continue
        for field in STATEMENT_LISTS:
            stack.extend(getattr(node, field, None) or ())
    return found


def _closure(modules: set[str]) -> list[str]:
    seen: set[str] = set()
    stack = list(modules)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(_imports_of(name) - seen)
    # The package __init__ only carries the version string.
    return sorted(seen - {PACKAGE})


def _names(fn: Callable[..., Any]) -> set[str]:
    names: set[str] = set()
    stack = [fn.__code__]
    while stack:  # the function and the code objects nested in it (inner functions, comprehensions)
        code = stack.pop()
        names |= set(code.co_names)
        stack.extend(c for c in code.co_consts if inspect.iscode(c))
    return names


def _reach(fn: Callable[..., Any]) -> tuple[list[Callable[..., Any]], set[str]]:
    """The functions of fn's own module that fn reaches (fn first), and the other cvn_assets modules whose
    functions, classes or constants they name."""
    home = fn.__module__
    functions: list[Callable[..., Any]] = []
    modules: set[str] = set()
    stack = [fn]
    while stack:
        current = stack.pop()
        if current in functions:
            continue
        functions.append(current)
        # Sorted: a set of names iterates in a per-process (hash-seeded) order, which would reorder the
        # functions hashed and give each process its own version.
        for name in sorted(_names(current)):
            value = current.__globals__.get(name)
            if value is None:
                continue
            module = value if isinstance(value, ModuleType) else inspect.getmodule(value)
            if module is None or module.__name__.split(".")[0] != PACKAGE:
                continue
            if module.__name__ == home:
                if inspect.isfunction(value):
                    stack.append(value)  # a helper beside the step: its source, not its whole module
            else:
                modules.add(module.__name__)
    return functions, modules


def step_version(fn: Callable[..., Any], *extra: object) -> str:
    """A hash of `fn`'s source, of the helpers beside it that it calls, and of the cvn_assets modules they
    reach through imports, plus the modules of `extra` (e.g. the model class a registry lookup reaches at
    run time)."""
    functions, modules = _reach(fn)
    modules |= {m.__name__ for m in (inspect.getmodule(o) for o in extra) if m is not None}
    digest = hashlib.sha256()
    for function in functions:
        digest.update(_source(function))
    for name in _closure(modules):
        path = _module_path(name)
        if path is not None and path.is_file():
            digest.update(name.encode())
            digest.update(_file_bytes(path))
    return digest.hexdigest()[:12]


# The assets of a sweep reach the same helpers and modules many times over; each run's process builds the
# definitions afresh, so these are read once per process. A function object is new when its module is
# reloaded, and a file is read again when its size or modification time changes.
@cache
def _source(function: Callable[..., Any]) -> bytes:
    return inspect.getsource(function).encode()


def _file_bytes(path: Path) -> bytes:
    stat = path.stat()
    return _read(path, stat.st_mtime_ns, stat.st_size)


@cache
def _read(path: Path, mtime_ns: int, size: int) -> bytes:
    return path.read_bytes()
