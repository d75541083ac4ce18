"""Imports go one way, down: the pure core imports nothing of ours above it and no Dagster; the store does
not import the harness (the harness may take the store's locks); hyperparameters may use the harness, never the reverse; only the Dagster shell
(defs/, definitions.py, launch.py) and the CLI import dagster."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cvn_assets"

# layer -> the layers of ours it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "store": {"core"},
    "harness": {"core", "store"},  # the database locks an HPO study is searched under
    "hyperparams": {"core", "harness", "store"},
    "report": {"core"},
    "artifacts": {"core", "harness", "hyperparams"},  # the stored formats of what assets hand on
    "features": {"core", "harness"},  # the plugin discovery the models' registry runs
    "diagnostics": {"core", "harness"},  # what a diagnostic reads: fold datasets, trained artifacts, trials
    "steps": {"core", "diagnostics", "features", "harness", "hyperparams", "store", "version"},
    "version": {"core"},
}
DAGSTER_FREE = (
    "core",
    "store",
    "harness",
    "hyperparams",
    "report",
    "steps",
    "artifacts",
    "features",
    "diagnostics",
)


def _layer(path: Path, package: Path) -> str:
    return path.relative_to(package).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def violations(package: Path = PACKAGE) -> list[str]:
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        layer = _layer(path, package)
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "cvn_assets" and len(parts) > 1 and layer in ALLOWED:
                target = parts[1]
                if target != layer and target not in ALLOWED[layer] and target != "__init__":
                    found.append(
                        f"{path.relative_to(package)} imports {name} ({layer} may not import {target})"
                    )
            if parts[0] in ("dagster", "dagster_graphql") and layer in DAGSTER_FREE:
                found.append(f"{path.relative_to(package)} imports {name} ({layer} is Dagster-free)")
    return found


def test_imports_go_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("core/planted.py", "from cvn_assets.harness import train"),
        ("store/planted.py", "import dagster as dg"),
    ],
)
def test_the_rule_catches_a_planted_violation(tmp_path: Path, module: str, line: str) -> None:
    package = tmp_path / "cvn_assets"
    (package / module).parent.mkdir(parents=True)
    (package / module).write_text(line + "\n")
    assert len(violations(package)) == 1
