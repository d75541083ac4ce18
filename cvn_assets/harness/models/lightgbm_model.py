"""LightGBM. Every hyperparameter comes from the resolver; seed and threads are injected."""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from cvn_assets.harness.adapter import LibraryAdapter, RoundHook
from cvn_assets.harness.native_files import NativeFile, native_file
from cvn_assets.harness.registry import register_model


def _round_callback(hook: RoundHook) -> Callable[[lgb.callback.CallbackEnv], None]:
    def callback(env: lgb.callback.CallbackEnv) -> None:
        if not hook(env.iteration, float(env.evaluation_result_list[0][2])):
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    return callback


@register_model("lightgbm", code="LGB")
class LightGBMModel(LibraryAdapter):
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        sample_weight: np.ndarray | None,
    ) -> LightGBMModel:
        params = dict(self.params)
        stopping = params.pop("early_stopping_rounds", None)
        model = lgb.LGBMClassifier(**params, random_state=self.seed, n_jobs=self.threads, verbose=-1)
        callbacks = [lgb.early_stopping(int(stopping), verbose=False)] if stopping else []
        if self.on_round:
            callbacks.append(_round_callback(self.on_round))
        watched = {"eval_X": (X_val,), "eval_y": (y_val,)} if self.watches_validation else {}
        model.fit(X, y, sample_weight=sample_weight, callbacks=callbacks or None, **watched)
        self.native = model
        self.best_iteration = int(model.best_iteration_) if stopping and model.best_iteration_ else None
        self.n_estimators_final = self.best_iteration or model.booster_.num_trees()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        # Through the booster, fitted or loaded from its text file alike: what LGBMClassifier.predict_proba
        # computes for a binary model.
        booster = self.native.booster_ if isinstance(self.native, lgb.LGBMClassifier) else self.native
        p = booster.predict(X, num_iteration=self.best_iteration)
        return np.vstack((1.0 - p, p)).transpose()

    def native_file(self) -> NativeFile:
        booster = self.native.booster_ if isinstance(self.native, lgb.LGBMClassifier) else self.native
        return native_file("model.txt", booster.model_to_string().encode(), "lightgbm")

    def load_native(self, file: NativeFile) -> None:
        self.native = lgb.Booster(model_str=file.data.decode())
