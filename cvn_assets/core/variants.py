"""A variant is a model or an ensemble trained on one feature set; reports name it by one label."""

from __future__ import annotations

from cvn_assets.core.config import BASE_FEATURE_SET

SEPARATOR = "@"


def variant_label(variant: str, feature_set: str | None) -> str:
    """`xgboost` on the base feature set (and on rows written before feature sets), else
    `xgboost@btc_overlay`."""
    return variant if feature_set in (None, BASE_FEATURE_SET) else f"{variant}{SEPARATOR}{feature_set}"


def split_label(label: str) -> tuple[str, str]:
    """(variant, feature set) of a label."""
    variant, _, feature_set = label.partition(SEPARATOR)
    return variant, feature_set or BASE_FEATURE_SET
