"""What one crypto x fold partition's economics shows in the UI, per variant at one cost: the validation
metrics a variant is selected on, its OOS economics, and the same cell's baselines beside it.

Money is shown in the units people read it in (expectancy in bps a trade, returns and drawdown in percent);
the stored rows keep their fractions. Pure: rows in, rows out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cvn_assets.core.baselines import MATCHED_BASELINE
from cvn_assets.core.proxy_economy import PICKED_ON
from cvn_assets.core.variants import variant_label

# The baselines of the same cell whose OOS sortino sits beside each variant's (random_matched is the
# variant's own: random entries trading exactly as often as it does).
BESIDE = ("buy_and_hold", "random")

BPS = 1e4  # basis points in one unit of return
# column -> (source column, scale, description with its unit)
_COLUMNS: dict[str, tuple[str | None, float, str]] = {
    "variant": ("variant", 1.0, "model or ensemble, @ its feature set when not base"),
    PICKED_ON: (PICKED_ON, 1.0, "validation F1 of the buy class: what the report picks on (0 to 1)"),
    "auc_buy_val": ("auc_buy_val", 1.0, "validation AUC of the buy class (0.5 is chance)"),
    "sortino_test": ("sortino_test", 1.0, "OOS sortino, annualized from bar returns (a ratio)"),
    "random_matched_sortino": (
        f"{MATCHED_BASELINE}_sortino_test",  # the column the store names it by
        1.0,
        "OOS sortino of random entries trading as often as this variant, mean over seeds (a ratio)",
    ),
    **{
        f"{b}_sortino": (None, 1.0, f"OOS sortino of the {b} baseline on the same cell and cost (a ratio)")
        for b in BESIDE
    },
    "expectancy_bps": ("expectancy_test", BPS, "OOS mean net return per trade, after costs (bps)"),
    "n_trades": ("n_trades_test", 1.0, "OOS trades (count)"),
    "win_rate_pct": ("win_rate_test", 100.0, "OOS share of trades that made money (%)"),
    "total_return_pct": ("total_return_test", 100.0, "OOS compounded return, after costs (%)"),
    "max_drawdown_pct": ("max_drawdown_test", 100.0, "OOS largest peak-to-trough loss (%)"),
}
VIEW_COLUMNS = list(_COLUMNS)
DESCRIPTIONS = {name: description for name, (_, _, description) in _COLUMNS.items()}
_ECONOMICS = (
    "sortino_test",
    "expectancy_bps",
    "n_trades",
    "win_rate_pct",
    "total_return_pct",
    "max_drawdown_pct",
)
BASELINE_COLUMNS = ["baseline_type", *_ECONOMICS]
BASELINE_DESCRIPTIONS = {
    "baseline_type": "naive baseline on the fold's test window (random: mean over seeds)",
    **{c: DESCRIPTIONS[c] for c in _ECONOMICS},
}


def _scaled(value: Any, scale: float) -> Any:
    if value is None or value != value:  # NULL and NaN stay absent
        return None
    return value * scale if scale != 1.0 else value


def _shown(row: Mapping[str, Any], name: str) -> Any:
    source, scale, _ = _COLUMNS[name]
    return _scaled(row.get(source), scale) if source is not None else None


def variants_view(results: Sequence[Mapping[str, Any]], baselines: Sequence[Mapping[str, Any]]) -> list[dict]:
    """One row per variant of `results` (one partition at one cost), with the OOS sortino of each
    baseline in `baselines` (the same partition and cost) beside it; a missing baseline is NULL."""
    baseline_sortino = {str(b["baseline_type"]): b.get("sortino_test") for b in baselines}
    rows = []
    for result in results:
        row = {name: _shown(result, name) for name in VIEW_COLUMNS}
        row["variant"] = variant_label(str(result["variant"]), result.get("feature_set"))
        for kind in BESIDE:
            row[f"{kind}_sortino"] = _scaled(baseline_sortino.get(kind), 1.0)
        rows.append(row)
    return rows


def baselines_view(baselines: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The baselines of one partition at one cost, in the same units as the variants'."""
    return [
        {"baseline_type": b["baseline_type"], **{name: _shown(b, name) for name in _ECONOMICS}}
        for b in baselines
    ]
