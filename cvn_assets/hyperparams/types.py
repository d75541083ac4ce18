"""The one table of hyperparameter types: the only place in the code that knows a parameter's type."""

from __future__ import annotations

PARAM_TYPES: dict[str, type] = {
    # boosting (XGBoost, LightGBM, CatBoost)
    "n_estimators": int,
    "iterations": int,
    "max_depth": int,
    "depth": int,
    "num_leaves": int,
    "learning_rate": float,
    "subsample": float,
    "subsample_freq": int,
    "colsample_bytree": float,
    "min_child_weight": float,
    "min_child_samples": int,
    "reg_lambda": float,
    "reg_alpha": float,
    "l2_leaf_reg": float,
    "gamma": float,
    "early_stopping_rounds": int,
    "tree_method": str,
    # linear models
    "C": float,
    "max_iter": int,
    "penalty": str,
}
SCALES = ("linear", "log")


def declare_param_types(**types: type) -> None:
    """Add a plugin model's parameters to the table (what an in-tree model does by editing it above).
    Redeclaring a known parameter with another type fails."""
    for name, kind in types.items():
        if kind not in (int, float, str):
            raise TypeError(f"hyperparameter '{name}': type must be int, float or str, not {kind}")
        known = next((k for n, k in PARAM_TYPES.items() if n.lower() == name.lower()), None)
        if known is not None and known is not kind:
            raise TypeError(f"hyperparameter '{name}' is already declared as {known.__name__}")
        PARAM_TYPES.setdefault(name, kind)


def param_type(param: str) -> type:
    for name, kind in PARAM_TYPES.items():
        if name.lower() == param.lower():
            return kind
    raise KeyError(f"hyperparameter '{param}' has no declared type; add it to PARAM_TYPES in {__name__}")


def canonical_param(param: str) -> str:
    """The library's spelling (keys upper-case everything: 'C' and 'c' are the same parameter)."""
    return next((name for name in PARAM_TYPES if name.lower() == param.lower()), param)
