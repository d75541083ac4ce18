"""Asset keys, check keys, job names and partition definitions of one sweep, named in one place.

Every key of a sweep sits under the sweep's name (`demo/economics/economics_10bps`), so two sweeps never
share a partition or a materialization. The last component of every key is unique within a sweep, so no
two nodes of the asset graph read the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from cvn_assets.core.config import BASE_FEATURE_SET


def _on(name: str, feature_set: str) -> str:
    """A model's or an ensemble's key name on a feature set: `xgboost` on base (the keys it had before
    feature sets), `xgboost_on_btc_overlay` on another, so no two graph nodes read the same."""
    return name if feature_set == BASE_FEATURE_SET else f"{name}_on_{feature_set}"


def cost_name(cost_bps: int) -> str:
    return f"cost_{cost_bps}bps"


@dataclass(frozen=True)
class SweepKeys:
    sweep: str
    cryptos: tuple[str, ...]

    def _key(self, *parts: str) -> dg.AssetKey:
        return dg.AssetKey([self.sweep, *parts])

    @property
    def ohlcv(self) -> dg.AssetKey:
        return self._key("ohlcv")

    def features(self, feature_set: str) -> dg.AssetKey:
        return self._key("features", f"{feature_set}_features")

    @property
    def fold_dataset(self) -> dg.AssetKey:
        return self._key("fold_dataset")

    @property
    def hyperparameters(self) -> dg.AssetKey:
        return self._key("hyperparameters")

    def model(self, name: str, feature_set: str = BASE_FEATURE_SET) -> dg.AssetKey:
        return self._key("model", f"{_on(name, feature_set)}_model")

    def predictions(self, name: str, feature_set: str = BASE_FEATURE_SET) -> dg.AssetKey:
        return self._key("predictions", f"{_on(name, feature_set)}_predictions")

    def ensemble(self, name: str, feature_set: str = BASE_FEATURE_SET) -> dg.AssetKey:
        return self._key("ensemble", _on(name, feature_set))

    def economics(self, cost_bps: int) -> dg.AssetKey:
        # Cost is an asset-key dimension: Dagster allows two partition dimensions and both are taken.
        return self._key("economics", f"economics_{cost_bps}bps")

    def baselines(self, cost_bps: int) -> dg.AssetKey:
        return self._key("baselines", f"baselines_{cost_bps}bps")

    def diagnostic(
        self, name: str, model: str | None = None, feature_set: str = BASE_FEATURE_SET
    ) -> dg.AssetKey:
        """A diagnostic's asset: on the cell (`diagnostics/leakage`), or on one of its models
        (`diagnostics/trial_invariance_xgboost`)."""
        return self._key("diagnostics", name if model is None else f"{name}_{_on(model, feature_set)}")

    @property
    def results_store(self) -> dg.AssetKey:
        return self._key("results_store")

    @property
    def perf(self) -> dg.AssetKey:
        return self._key("sweep_perf")

    @property
    def report(self) -> dg.AssetKey:
        return self._key("proxy_economy_report")

    @property
    def coverage_check(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.hyperparameters, "hyperparameters_complete")

    @property
    def fallback_rate_check(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.hyperparameters, "hpo_fallback_rate")

    def group(self, kind: str) -> str:
        return f"{self.sweep}_{kind}"

    @property
    def report_job(self) -> str:
        return f"{self.sweep}_report"

    @property
    def ohlcv_job(self) -> str:
        return f"{self.sweep}_ohlcv"

    @property
    def sweep_job(self) -> str:
        return f"{self.sweep}_sweep"

    @property
    def audit_job(self) -> str:
        return f"{self.sweep}_audit"

    @property
    def diagnostics_job(self) -> str:
        return f"{self.sweep}_diagnostics"

    @property
    def light_diagnostics_job(self) -> str:
        return f"{self.sweep}_diagnostics_light"

    @property
    def fold_sensor(self) -> str:
        return f"{self.sweep}_new_folds"

    @property
    def folds_partitions(self) -> dg.DynamicPartitionsDefinition:
        """The fold dimension: keys are added as the data covers new folds, never at load time."""
        return dg.DynamicPartitionsDefinition(name=f"{self.sweep}_folds")

    @property
    def crypto_partitions(self) -> dg.StaticPartitionsDefinition:
        return dg.StaticPartitionsDefinition(list(self.cryptos))

    @property
    def crypto_fold_partitions(self) -> dg.MultiPartitionsDefinition:
        return dg.MultiPartitionsDefinition({"crypto": self.crypto_partitions, "fold": self.folds_partitions})


def partition_key(crypto: str, fold_id: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"crypto": crypto, "fold": fold_id})


def split_partition_key(key: str) -> tuple[str, str]:
    """crypto and fold of a crypto x fold key: a MultiPartitionKey, or its string (dimensions in name order)."""
    if isinstance(key, dg.MultiPartitionKey):
        return key.keys_by_dimension["crypto"], key.keys_by_dimension["fold"]
    crypto, fold_id = key.split("|")
    return crypto, fold_id


def crypto_and_fold(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> tuple[str, str]:
    return split_partition_key(context.partition_key)


def selected_assets(run: dg.DagsterRun) -> set[dg.AssetKey]:
    """The assets a run materializes or checks (none for a job run that selected none explicitly)."""
    return set(run.asset_selection or ()) | {check.asset_key for check in run.asset_check_selection or ()}
