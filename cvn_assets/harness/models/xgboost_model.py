"""XGBoost. Every hyperparameter comes from the resolver; seed and threads are injected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xgboost as xgb

from cvn_assets.harness.adapter import LibraryAdapter, RoundHook
from cvn_assets.harness.native_files import NativeFile, native_file, through_file
from cvn_assets.harness.registry import register_model


class _RoundCallback(xgb.callback.TrainingCallback):
    def __init__(self, hook: RoundHook) -> None:
        super().__init__()
        self.hook = hook

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        loss = next(iter(evals_log["validation_0"].values()))[-1]
        return not self.hook(epoch, float(loss))  # True stops training


@register_model("xgboost", code="XGB")
class XGBoostModel(LibraryAdapter):
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> XGBoostModel:
        callbacks = [_RoundCallback(self.on_round)] if self.on_round else None
        model = xgb.XGBClassifier(
            **self.params, random_state=self.seed, n_jobs=self.threads, callbacks=callbacks
        )
        # Early stopping and the round hook watch the validation split, never the test split.
        eval_set = [(X_val, y_val)] if self.watches_validation else None
        model.fit(X, y, sample_weight=sample_weight, eval_set=eval_set, verbose=False)
        if callbacks:
            model.set_params(callbacks=None)  # the hook belongs to one fit, not to the stored model
        self.native = model
        best = getattr(model, "best_iteration", None) if "early_stopping_rounds" in self.params else None
        self.best_iteration = int(best) if best is not None else None
        self.n_estimators_final = model.get_booster().num_boosted_rounds() if best is None else int(best) + 1
        return self

    def native_file(self) -> NativeFile:
        return native_file("model.ubj", through_file(self.native.save_model, ".ubj"), "xgboost")

    def load_native(self, file: NativeFile) -> None:
        model = xgb.XGBClassifier()
        model.load_model(bytearray(file.data))
        self.native = model
