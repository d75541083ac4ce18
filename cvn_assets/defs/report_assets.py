"""`<sweep>/proxy_economy_report`: the answer a sweep exists for, over all its partitions' rows.

Unpartitioned, downstream of every cost's economics and baselines; it refreshes by itself once every
partition is materialized and again whenever one changes (`AutomationCondition.eager`). It reads the rows
from the results database and loads one cell (the last crypto x fold partition) through the IO manager
for its equity curves. Tables, the verdict and the plots go into its metadata, which the UI shows; `cvn
report` builds the same page from the same rows.

It also keeps MLflow's model registry on its picks (`champion_picks`): at each cost level the report
picks one variant (the best mean validation `PICKED_ON` over the cells); what is deployed is that
variant's model of each crypto trained on the crypto's latest fold, registered as a version of
`<sweep>-<crypto>` with the alias `<sweep>-<cost>bps-champion`, which moves when the pick moves.
"""

import contextlib
import io
from typing import Any

import dagster as dg
import pandas as pd

from cvn_assets import steps
from cvn_assets.artifacts.published import Publisher
from cvn_assets.core.datasets import FoldDataset
from cvn_assets.core.equity_curves import CellEquity
from cvn_assets.core.proxy_economy import SELECTION_METRICS, ProxyEconomyReport
from cvn_assets.defs.keys import partition_key
from cvn_assets.defs.metadata import rows_table, step_peak_memory
from cvn_assets.defs.model_assets import input_name, variant_keys
from cvn_assets.defs.resources import ReportFiles, ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.defs.tracking import MlflowTracking, Pick
from cvn_assets.diagnostics.verdicts import audit_overview
from cvn_assets.harness.predictions import VariantPredictions
from cvn_assets.report.overview import overview_tables
from cvn_assets.report.page import ReportPage, build_page, png_data_uri, render_html
from cvn_assets.store.reports import sweep_rows
from cvn_assets.store.verdicts import read_verdicts

MAX_TABLE_ROWS = 400  # per table in the UI; the HTML page has every row
UI_FIGURE_WIDTH = 540  # pixels: the metadata value column beside the side panel at 1600 pixels
# Narrow enough for the overview beside the other tables; MLflow's UI has the rest of each version.
CHAMPION_COLUMNS = {
    "cost_bps": "trading cost per trade (bps); the alias is <sweep>-<cost>bps-champion",
    "crypto": "the registered model is <sweep>-<crypto>",
    "variant": "the report's pick at this cost",
    "version": "the registered model version the alias points at (empty: no MLflow run to register)",
}


def champion_picks(report: ProxyEconomyReport, results: pd.DataFrame) -> list[Pick]:
    """Per cost level and crypto, the partition to register: the picked variant's latest fold (the
    latest test window) among the result rows of that cost."""
    picks = []
    for row in report.overfitting.to_dict("records"):
        variant, cost = row["picked_variant"], int(row["cost_bps"])
        if variant is None or pd.isna(variant):
            continue
        rows = results[(results["cost_bps"] == cost) & (results["variant"] == variant)]
        for crypto, cells in rows.groupby("crypto", sort=True):
            latest = cells.sort_values("test_start").iloc[-1]
            picks.append(
                Pick(cost, str(crypto), str(variant), str(latest["fold_id"]), str(latest["data_hash"]))
            )
    return picks


def page_metadata(page: ReportPage, files: Publisher | None = None) -> dict[str, Any]:
    """The page as asset metadata, read on one screen: the verdict of each cost level in full, short
    tables (the overview's; the full ones are on the HTML page), each figure as an image, and the
    overfitting figures per cost as numbers the UI plots across materializations. With `files` serving
    the published files, the figures are links to them (shown inline) and the HTML page is linked."""
    metadata: dict[str, Any] = {}
    page_url = files.publish(page.sweep, render_html(page).encode(), ".html") if files else None
    if page_url:
        metadata["report page"] = dg.MetadataValue.url(page_url)
    for cost, line in zip(page.report.overfitting["cost_bps"], page.verdicts, strict=True):
        metadata[f"verdict at {cost} bps"] = dg.MetadataValue.md(line)
    if not page.verdicts:
        metadata["verdict"] = dg.MetadataValue.md("No result rows yet.")
    for name, table in overview_tables(page.report).items():
        records = table.frame.head(MAX_TABLE_ROWS).to_dict("records")
        metadata[name] = rows_table(records, [str(c) for c in table.frame.columns], table.descriptions)
    for caption, png in page.figures.items():
        # The UI shows markdown over 1000 characters behind a link, which an inline PNG always is; a link
        # to the published file is shown inline.
        url = files.publish(page.sweep, png, ".png") if files else None
        if files is None or url is None:
            metadata[f"plot: {caption}"] = dg.MetadataValue.md(f"![{caption}]({png_data_uri(png)})")
            continue
        from cvn_assets.report.plots import thumbnail  # matplotlib: only when a report is drawn

        # Narrow enough for the metadata column (a wider image stretches it and cuts the verdicts off); a
        # click opens the full size.
        small = files.publish(page.sweep, thumbnail(png, UI_FIGURE_WIDTH), ".png")
        metadata[f"plot: {caption}"] = dg.MetadataValue.md(f"[![{caption}]({small})]({url})")
    for row in page.report.overfitting.to_dict("records"):
        for figure in ("pbo_selected", "deflated_sharpe"):
            if row[figure] is not None and not pd.isna(row[figure]):
                # A probability to four decimals: the Plots tab would print 3.4e-6 as 3.40000000E-6.
                metadata[f"{figure}/{row['cost_bps']}bps"] = round(float(row[figure]), 4)
    if page.notes:
        metadata["notes"] = dg.MetadataValue.md("\n\n".join(page.notes))
    if page.audits:
        metadata["diagnostics"] = dg.MetadataValue.md("\n\n".join(page.audits))
    if not page.audit_table.empty:
        frame = page.audit_table
        metadata["diagnostics by status"] = rows_table(
            frame.to_dict("records"), [str(c) for c in frame.columns]
        )
    return metadata


def build_report_asset(sweep: Sweep) -> dg.AssetsDefinition:
    cfg, keys = sweep.config, sweep.keys
    variants = variant_keys(sweep)
    last_cell = dg.LastPartitionMapping()

    @dg.asset(
        key=keys.report,
        group_name=keys.group("report"),
        deps=[*(keys.economics(c) for c in cfg.costs_bps), *(keys.baselines(c) for c in cfg.costs_bps)],
        ins={"dataset": dg.AssetIn(keys.fold_dataset, partition_mapping=last_cell)}
        | {input_name(v): dg.AssetIn(key, partition_mapping=last_cell) for v, key in variants.items()},
        automation_condition=dg.AutomationCondition.eager(),
        code_version=sweep.code_versions.report,
        kinds={"pandas", "html"},
        description=f"Does validation {', '.join(SELECTION_METRICS)} predict OOS "
        "money better than luck? Rank correlations with bootstrap intervals, paired tests against every "
        "baseline (random_matched included), the probability of backtest overfitting (CSCV) and the "
        "deflated Sharpe ratio of the variant picked on validation, a leaderboard and plots, per cost "
        "level, over every crypto x fold of the sweep.",
    )
    def proxy_economy_report(
        context: dg.AssetExecutionContext,
        results_store: ResultsStore,
        report_files: ReportFiles,
        mlflow: MlflowTracking,
        dataset: FoldDataset,
        **predictions: VariantPredictions,
    ) -> dg.MaterializeResult:
        results, baselines = sweep_rows(results_store.engine(), cfg.run_id)
        cell = steps.report_cell(cfg, dataset, [predictions[input_name(v)] for v in variants])
        with results_store.engine().connect() as conn:
            audits = audit_overview(read_verdicts(conn, cfg.run_id), sweep.name)
        page = build_page(sweep.name, cfg.run_id, results, baselines, cell, seed=cfg.seed, audits=audits)
        for line in page.verdicts:
            context.log.info(line)
        metadata = page_metadata(page, report_files.publisher())
        if mlflow.enabled:
            champions = mlflow.register_champions(sweep, champion_picks(page.report, results))
            for row in champions:
                if row["model_uri"] is None:
                    cell = f"{row['crypto']} {row['fold_id']}"
                    context.log.warning(
                        f"{row['variant']} ({cell}) is the pick at {row['cost_bps']} bps but has no MLflow "
                        "run: re-materialize that partition to register it"
                    )
            metadata["mlflow_champions"] = rows_table(champions, list(CHAMPION_COLUMNS), CHAMPION_COLUMNS)
        return dg.MaterializeResult(metadata=metadata | step_peak_memory())

    return proxy_economy_report


def last_cell(instance: dg.DagsterInstance, defs: dg.Definitions, sweep: Sweep) -> CellEquity | None:
    """The equity curves of the cell the asset draws (the last crypto x fold partition: the last crypto's
    latest fold), loaded through the code location's IO manager; None when its artifacts are missing."""
    keys = sweep.keys
    folds = instance.get_dynamic_partitions(keys.folds_partitions.name)
    if not folds:
        return None
    partition = str(partition_key(max(sweep.config.cryptos), folds[-1]))
    try:
        # Each load logs DEBUG lines to a console logger of its own: not the CLI's output.
        with defs.get_asset_value_loader(instance) as loader, contextlib.redirect_stderr(io.StringIO()):
            dataset = loader.load_asset_value(keys.fold_dataset, partition_key=partition)
            variants = [
                loader.load_asset_value(k, partition_key=partition) for k in variant_keys(sweep).values()
            ]
    except (dg.DagsterError, dg.Failure, OSError):  # MissingUpstreamError is a Failure, not a DagsterError
        return None
    return steps.report_cell(sweep.config, dataset, variants)
