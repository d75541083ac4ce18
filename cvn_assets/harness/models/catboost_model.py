"""CatBoost. Every hyperparameter comes from the resolver; seed and threads are injected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier

from cvn_assets.harness.adapter import LibraryAdapter, RoundHook
from cvn_assets.harness.native_files import NativeFile, native_file, through_file
from cvn_assets.harness.registry import register_model


class _RoundCallback:
    def __init__(self, hook: RoundHook) -> None:
        self.hook = hook

    def after_iteration(self, info: Any) -> bool:
        loss = next(iter(info.metrics["validation"].values()))[-1]
        return self.hook(info.iteration - 1, float(loss))  # CatBoost counts from 1; False stops training


@register_model("catboost", code="CB")
class CatBoostModel(LibraryAdapter):
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> CatBoostModel:
        model = CatBoostClassifier(
            **self.params,
            random_seed=self.seed,
            thread_count=self.threads,
            verbose=False,
            allow_writing_files=False,
        )
        stopping = "early_stopping_rounds" in self.params
        eval_set = (X_val, y_val) if self.watches_validation else None
        callbacks = [_RoundCallback(self.on_round)] if self.on_round else None
        # Shrink to the best round only under early stopping: watching for the round hook changes nothing.
        model.fit(
            X,
            y,
            sample_weight=sample_weight,
            eval_set=eval_set,
            callbacks=callbacks,
            use_best_model=stopping if eval_set is not None else None,
        )
        self.native = model
        self.best_iteration = int(model.get_best_iteration()) if stopping else None
        self.n_estimators_final = int(model.tree_count_)
        return self

    def native_file(self) -> NativeFile:
        return native_file("model.cbm", through_file(self.native.save_model, ".cbm"), "catboost")

    def load_native(self, file: NativeFile) -> None:
        self.native = CatBoostClassifier().load_model(blob=file.data)
