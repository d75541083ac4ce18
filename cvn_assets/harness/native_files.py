"""A trained model as its library's own file: what the artifact store writes and MLflow logs.

Each adapter says how its library saves and loads a model (XGBoost UBJ, LightGBM text, CatBoost `.cbm`);
anything scikit-learn shaped goes through skops, whose loader refuses any type it was not told to trust,
so opening a stored model never executes code (pickle and joblib would).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# Modules whose types a stored scikit-learn model may hold: estimators, pipelines and their arrays.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.sparse.")


class UntrustedModelFile(ValueError):
    pass


@dataclass(frozen=True)
class NativeFile:
    name: str  # the file's name in the artifact store and in MLflow: model.ubj, model.txt, model.cbm, ...
    data: bytes
    library: str  # the distribution that reads it back ("xgboost", "scikit-learn")
    library_version: str

    def describe(self) -> dict[str, str | int]:
        """What is recorded beside the file (no bytes)."""
        return {
            "name": self.name,
            "library": self.library,
            "library_version": self.library_version,
            "bytes": len(self.data),
        }


def library_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def native_file(name: str, data: bytes, library: str) -> NativeFile:
    return NativeFile(name, data, library, library_version(library))


def through_file(save: Callable[[str], Any], suffix: str) -> bytes:
    """The bytes a library writes when it can only save to a path."""
    with tempfile.TemporaryDirectory(prefix="cvn-native-") as folder:
        path = str(Path(folder) / f"model{suffix}")
        save(path)
        return Path(path).read_bytes()


def skops_file(obj: Any, name: str = "model.skops") -> NativeFile:
    import skops.io

    return native_file(name, skops.io.dumps(obj), "scikit-learn")


def load_skops(data: bytes, what: str) -> Any:
    """A skops file's object, trusting scikit-learn, NumPy and SciPy types only; any other type (a class
    that could run code on load) is refused, naming it."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=data)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULES)]
    if refused:
        raise UntrustedModelFile(
            f"{what}: refusing to load types outside scikit-learn/NumPy/SciPy: {', '.join(refused)}"
        )
    return skops.io.loads(data, trusted=untrusted)


# Any registered adapter can be stored: one that says how (LibraryAdapter and its subclasses) is asked; a
# plugin that follows only the protocol is stored as its scikit-learn shaped `native`, through skops.
def adapter_file(adapter: Any) -> NativeFile:
    return adapter.native_file() if hasattr(adapter, "native_file") else skops_file(adapter.native)


def adapter_state(adapter: Any) -> dict[str, Any]:
    if hasattr(adapter, "state"):
        return adapter.state()
    return {"best_iteration": adapter.best_iteration, "n_estimators_final": adapter.n_estimators_final}


def restore_adapter(adapter: Any, file: NativeFile, state: dict[str, Any]) -> None:
    if hasattr(adapter, "restore"):
        adapter.restore(file, state)
        return
    adapter.native = load_skops(file.data, f"{type(adapter).__name__} {file.name}")
    adapter.best_iteration = state.get("best_iteration")
    adapter.n_estimators_final = state.get("n_estimators_final")
