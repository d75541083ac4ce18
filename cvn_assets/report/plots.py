"""The report's plots as PNG bytes (matplotlib without a display), one function per figure."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: figures are only ever written to bytes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cvn_assets.core.baselines import MATCHED_BASELINE  # noqa: E402
from cvn_assets.core.selection_stats import spearman  # noqa: E402

WIDTH_PER_PANEL, HEIGHT = 4.2, 3.6


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def thumbnail(png: bytes, width: int) -> bytes:
    """`png` scaled down to `width` pixels (aspect kept; a narrower one as it is): what fits the UI's
    metadata column beside its side panel, linked to the full size."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.width <= width:
        return png
    scaled = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    scaled.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _panels(n: int, *, share_y: bool = False) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, n, figsize=(WIDTH_PER_PANEL * n, HEIGHT), squeeze=False, sharey=share_y)
    return fig, list(axes[0])


def selection_scatter(results: pd.DataFrame, selection_metric: str, outcome: str) -> bytes:
    """One panel per cost level: each (variant, cell) at its validation metric and OOS outcome."""
    costs = sorted(results["cost_bps"].unique())
    fig, axes = _panels(max(len(costs), 1))
    for ax, cost in zip(axes, costs, strict=False):
        at_cost = results[results["cost_bps"] == cost]
        for variant, rows in at_cost.groupby("variant", sort=True):
            ax.scatter(rows[selection_metric], rows[outcome], s=14, alpha=0.75, label=variant)
        rho = spearman(at_cost[selection_metric].to_numpy(float), at_cost[outcome].to_numpy(float))
        ax.set_title(f"{cost} bps: Spearman {rho:.2f}" if rho is not None else f"{cost} bps")
        ax.set_xlabel(selection_metric)
        ax.axhline(0, color="grey", linewidth=0.6)
    axes[0].set_ylabel(outcome)
    axes[-1].legend(fontsize=7, loc="best")
    fig.suptitle(
        f"Validation {selection_metric} against OOS {outcome}, one point per variant and cell", y=1.03
    )
    return _png(fig)


def cell_equity(curves: pd.DataFrame, title: str) -> bytes:
    """A cell's OOS equity curves: variants as solid lines, baselines dashed."""
    fig, (ax,) = _panels(1)
    fig.set_size_inches(9, 4)
    for name in curves.columns:
        baseline = name in ("buy_and_hold", "naive", "random")
        ax.plot(curves.index, curves[name], linestyle="--" if baseline else "-",
                linewidth=1.4 if baseline else 1.0, label=name)  # fmt: skip
    ax.set_ylabel("equity (start = 1)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.autofmt_xdate()
    return _png(fig)


def sortino_distributions(results: pd.DataFrame, baselines: pd.DataFrame) -> bytes:
    """One panel per cost level: each variant's OOS sortino over cells beside the random baseline's and
    the random_matched baselines' (pooled over the variants)."""
    costs = sorted(results["cost_bps"].unique())
    fig, axes = _panels(max(len(costs), 1), share_y=True)  # one set of names, on the left
    for ax, cost in zip(axes, costs, strict=False):
        at_cost = results[results["cost_bps"] == cost]
        groups = {str(v): rows["sortino_test"] for v, rows in at_cost.groupby("variant", sort=True)}
        random = baselines[(baselines["cost_bps"] == cost) & (baselines["baseline_type"] == "random")]
        groups["random"] = random["sortino_test"]
        groups[MATCHED_BASELINE] = at_cost[f"{MATCHED_BASELINE}_sortino_test"]
        values = [
            np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for v in groups.values()
        ]
        ax.boxplot(values, tick_labels=list(groups), vert=False, showfliers=True)
        for label in axes[0].get_yticklabels():
            if label.get_text() in ("random", MATCHED_BASELINE):
                label.set_color("tab:red")
        ax.axvline(0, color="grey", linewidth=0.6)
        ax.set_title(f"{cost} bps")
        ax.set_xlabel("OOS sortino over cells")
    fig.suptitle("OOS sortino per variant against the random baselines (red)", y=1.03)
    return _png(fig)
