"""No hyperparameter literal in model, ensemble or HPO code: values come from configuration only.

The scan flags a constant given to a parameter the type table knows (`max_depth=6`, `{"learning_rate":
0.1}`, `params["C"] = 1.0`); comments are not code, and the committed values file is not scanned.
"""

from __future__ import annotations

import ast
from pathlib import Path

from cvn_assets.hyperparams.types import PARAM_TYPES

PACKAGE = Path(__file__).resolve().parents[1] / "cvn_assets"
SCANNED = ["harness/models", "harness/ensembles", "harness/adapter.py", "harness/train.py", "harness/ensemble.py",
           "harness/hpo.py",
           "harness/nodes", "hyperparams"]  # fmt: skip
KNOWN = {p.lower() for p in PARAM_TYPES}


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        return _is_literal(node.operand)
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool | type(None))


def literals_in(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call):
            found += [
                f"{filename}:{node.lineno} {k.arg}="
                for k in node.keywords
                if k.arg and k.arg.lower() in KNOWN and _is_literal(k.value)
            ]
        elif isinstance(node, ast.Dict):
            found += [f"{filename}:{node.lineno} '{k.value}':" for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and str(k.value).lower() in KNOWN and _is_literal(v)]  # fmt: skip
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            key = node.targets[0].slice
            if isinstance(key, ast.Constant) and str(key.value).lower() in KNOWN and _is_literal(node.value):
                found.append(f"{filename}:{node.lineno} ['{key.value}'] =")
    return found


def _files() -> list[Path]:
    out: list[Path] = []
    for entry in SCANNED:
        path = PACKAGE / entry
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def test_model_ensemble_and_hpo_code_hold_no_hyperparameter_literal() -> None:
    files = _files()
    assert len(files) >= 10
    violations = [v for f in files for v in literals_in(f.read_text(), str(f.relative_to(PACKAGE)))]
    assert violations == []


def test_the_scan_catches_a_planted_violation() -> None:
    planted = """
import xgboost as xgb
# max_depth=6 in a comment is not code
def fit(params):
    model = xgb.XGBClassifier(**params, max_depth=6)
    grid = {"learning_rate": 0.1, "note": 3}
    params["C"] = -1.0
    return model, grid, xgb.XGBClassifier(verbose=False, n_estimators=params["n_estimators"])
"""
    assert sorted(literals_in(planted, "planted.py")) == [
        "planted.py:5 max_depth=",
        "planted.py:6 'learning_rate':",
        "planted.py:7 ['C'] =",
    ]
