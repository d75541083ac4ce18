"""Dagster's private modules are used from one module only, and an upgrade that moves a name says which.

`cvn_assets/dagster_internals.py` holds every `dagster._...` import of the package, each commented with why
no public API serves. These tests fail with the moved name and the file to mend, rather than with an
ImportError deep in a daemon's log."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from cvn_assets import dagster_internals

PACKAGE = Path(dagster_internals.__file__).parent


@pytest.mark.parametrize("module, name", dagster_internals.USES, ids=[n for _, n in dagster_internals.USES])
def test_every_private_dagster_name_we_use_still_resolves(module: str, name: str) -> None:
    import dagster

    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"dagster {dagster.__version__} no longer has {module}.{name} ({exc}): find where the upgrade moved "
            f"it and update cvn_assets/dagster_internals.py (and the code its comment names)"
        )
    # Imported as it is named, or under a public alias (a private helper, `_runs_directory as ...`).
    assert any(value is found for value in vars(dagster_internals).values())


def test_no_other_module_imports_dagster_private_modules() -> None:
    """Every import of `dagster._...` in the package is in dagster_internals.py, and it lists each in USES."""
    offenders, imported = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dagster._"):
                names = {(node.module, alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                names = {(alias.name, "") for alias in node.names if alias.name.startswith("dagster._")}
            else:
                continue
            if not names:
                continue
            if path.name == "dagster_internals.py":
                imported |= names
            else:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not offenders, (
        f"import Dagster's private names through cvn_assets/dagster_internals.py: {offenders}"
    )
    assert imported == set(dagster_internals.USES), "USES must list exactly what dagster_internals imports"
