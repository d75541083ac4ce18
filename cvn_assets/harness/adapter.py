"""The common part of a model adapter: the parameters as given, and what `fit` learns.

An adapter subclasses `LibraryAdapter` and writes `fit` (and `calibration` when isotonic is the wrong
choice); everything else a model needs is the harness's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cvn_assets.harness.native_files import NativeFile, load_skops, skops_file

# Called after each boosting round with (round, validation loss); returning False stops training. The one
# hook HPO needs for pruning: each adapter wires it into its library's own callback mechanism.
RoundHook = Callable[[int, float], bool]


class LibraryAdapter:
    calibration: ClassVar[str] = "isotonic"

    def __init__(self, params: Mapping[str, Any], seed: int, threads: int) -> None:
        # No work here (scikit-learn's estimator contract): store what fit will use.
        self.params = dict(params)
        self.seed = seed
        self.threads = threads
        self.best_iteration: int | None = None
        self.n_estimators_final: int | None = None
        self.native: Any = None
        self.on_round: RoundHook | None = None

    @property
    def watches_validation(self) -> bool:
        """Whether fit evaluates each round on the validation split (early stopping, or a round hook)."""
        return "early_stopping_rounds" in self.params or self.on_round is not None

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if self.native is None:
            raise RuntimeError(f"{type(self).__name__}: fit before predict_proba")
        return self.native.predict_proba(X)

    # Stored models: the library's own file. The default suits any scikit-learn shaped model (skops); an
    # adapter whose library has a format of its own overrides both.
    def native_file(self) -> NativeFile:
        return skops_file(self.native)

    def load_native(self, file: NativeFile) -> None:
        self.native = load_skops(file.data, f"{type(self).__name__} {file.name}")

    def state(self) -> dict[str, Any]:
        """What `fit` learned besides the native model, as JSON values."""
        return {"best_iteration": self.best_iteration, "n_estimators_final": self.n_estimators_final}

    def restore(self, file: NativeFile, state: Mapping[str, Any]) -> None:
        """Back to the fitted state `native_file` and `state` describe."""
        self.load_native(file)
        self.best_iteration = state.get("best_iteration")
        self.n_estimators_final = state.get("n_estimators_final")
