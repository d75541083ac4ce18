"""The common part of a model adapter: the parameters as given, and what `fit` learns.

An adapter subclasses `LibraryAdapter` and writes `fit` (and `calibration` when isotonic is the wrong
choice); everything else a model needs is the harness's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

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
