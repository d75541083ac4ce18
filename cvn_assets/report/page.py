"""The report as one self-contained HTML page (tables and PNG plots inlined), shared by the
`proxy_economy_report` asset and `cvn report`."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from cvn_assets.core.equity_curves import CellEquity
from cvn_assets.core.proxy_economy import (
    COMPARED_ON,
    OUTCOMES,
    PICKED_ON,
    SELECTION_METRICS,
    ProxyEconomyReport,
    as_floats,
    build_report,
    degenerate_everywhere,
    verdicts,
)


@dataclass(frozen=True)
class ReportPage:
    sweep: str
    run_id: str
    report: ProxyEconomyReport
    verdicts: list[str]
    figures: dict[str, bytes]  # caption -> PNG
    notes: list[str] = field(default_factory=list)
    # The diagnostics' audits of the sweep's cells: their one-line state, and a row per diagnostic.
    audits: list[str] = field(default_factory=list)
    audit_table: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_page(
    sweep: str,
    run_id: str,
    results: pd.DataFrame,
    baselines: pd.DataFrame,
    cell: CellEquity | None,
    *,
    seed: int = 0,
    audits: tuple[list[str], list[dict]] = ([], []),
) -> ReportPage:
    """`audits`: the diagnostics' overview (`diagnostics.verdicts.audit_overview`), shown as it is."""
    from cvn_assets.report import plots  # matplotlib loads when a report is drawn, not with the definitions

    results, baselines = as_floats(results), as_floats(baselines)
    report = build_report(results, baselines, seed=seed)
    figures: dict[str, bytes] = {}
    notes: list[str] = []
    if not results.empty:
        constant = sorted(v for v, flag in degenerate_everywhere(results).items() if flag)
        if constant:
            notes.append(
                f"Degenerate in every cell (a constant prediction: OOS AUC exactly 0.5, no OOS trade): "
                f"{', '.join(map(str, constant))}. Their figures are a finding, not a result."
            )
        figures[f"Validation {PICKED_ON} against OOS sortino"] = plots.selection_scatter(
            results, PICKED_ON, "sortino_test"
        )
        figures["OOS sortino against the random baselines"] = plots.sortino_distributions(results, baselines)
    if cell is not None:
        figures[f"Equity curves: {cell.title}"] = plots.cell_equity(cell.curves, cell.title)
    else:
        notes.append("No cell's equity curves: its fold dataset and predictions could not be loaded.")
    lines, table = audits
    return ReportPage(sweep, run_id, report, verdicts(report), figures, notes, lines, pd.DataFrame(table))


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1d2433; max-width: 1500px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0 1em; }
th, td { border: 1px solid #d5d9e0; padding: 3px 7px; text-align: right; }
th { background: #f2f4f7; } td:first-child, th:first-child { text-align: left; }
.verdict { background: #f6f8fb; border-left: 4px solid #4f6bed; padding: 0.4em 0.8em; margin: 0.4em 0; }
img { max-width: 100%; border: 1px solid #e3e6eb; margin: 0.5em 0; }
.note { color: #6b7280; font-size: 0.85em; }
"""

_HOW_TO_READ = (
    f"Cells are crypto x fold pairs. Correlations are Spearman's rho over (variant, cell) pairs with a 95% "
    f"interval from resampling cells; selection metrics are {', '.join(SELECTION_METRICS)} and outcomes "
    f"{', '.join(OUTCOMES)} (brier is lower-is-better, so a useful brier correlates negatively). "
    f"Against each baseline, share_better is the share of cells where the variant's {' / '.join(COMPARED_ON)} "
    "is higher, with the two-sided sign test and Wilcoxon signed-rank test of the paired differences. "
    f"pbo_selected is the probability of backtest overfitting (CSCV, Bailey et al. 2014) when the variant "
    f"with the best {PICKED_ON} is picked in one half of the cells and ranked by OOS sortino in the other; "
    "pbo_oos is the classic CSCV on OOS sortino alone; the deflated Sharpe ratio (Bailey and Lopez de Prado "
    "2014) is the probability that the picked variant's Sharpe ratio over its per-cell OOS total returns "
    "beats the best of as many unskilled variants. random_matched trades exactly as often as its variant. "
    "A variant marked degenerate in the leaderboard predicts a constant in every cell (OOS AUC exactly 0.5, "
    "no OOS trade). A variant is a model or ensemble on one feature set (xgboost@btc_overlay: xgboost on "
    "btc_overlay; no suffix: base), and the overfitting odds count every pair tried. Feature sets compares "
    "each feature set with base, model by model on the same cells and pooled, with the same paired tests."
)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)


def render_html(page: ReportPage) -> str:
    title = f"Proxy vs economy: {page.sweep} ({page.run_id})"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {html.escape(_HOW_TO_READ)}</p>",
        "<h2>Answer</h2>",
        *(f"<p class='verdict'>{html.escape(line)}</p>" for line in page.verdicts),
        *(f"<p class='note'>{html.escape(note)}</p>" for note in page.notes),
        *(f"<p class='verdict'>{html.escape(line)}</p>" for line in page.audits),
    ]
    for caption, png in page.figures.items():
        parts += [
            f"<h2>{html.escape(caption)}</h2>",
            f"<img alt='{html.escape(caption)}' src='{png_data_uri(png)}'>",
        ]
    for name, frame in page.report.tables().items():
        parts += [f"<h2>{html.escape(name.replace('_', ' ').capitalize())}</h2>", _table(frame)]
    if not page.audit_table.empty:
        parts += ["<h2>Diagnostics (verdicts by status)</h2>", _table(page.audit_table)]
    parts.append("</body></html>")
    return "\n".join(parts)
