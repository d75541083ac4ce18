"""hyperparameters[crypto x fold]: every configured model's hyperparameters as resolved for this partition,
with two checks: the coverage of required keys (blocking: no model trains on an incomplete configuration)
and the rate of fallbacks over the models' recent trainings."""

import dagster as dg

from cvn_assets import steps
from cvn_assets.core.secrets import scrub
from cvn_assets.defs.automation import run_with_asset, run_with_report
from cvn_assets.defs.metadata import evaluated_now, readable
from cvn_assets.defs.resources import ResultsStore
from cvn_assets.defs.sweep import Sweep
from cvn_assets.hyperparams.model_params import (
    ModelHyperparams,
    coverage,
    fallback_rate_level,
)
from cvn_assets.hyperparams.resolver import Resolver

FALLBACKS_METADATA = "hpo_fallbacks"  # on each model materialization: fallback values its training used


def hyperparams_metadata(hp: ModelHyperparams) -> dict[str, object]:
    return {
        "mode": "search" if hp.search else "fixed",
        "values": scrub(hp.values),  # shown in the UI: a value under a *_KEY/*_TOKEN/... name is masked
        "ranges": {p: list(r) for p, r in hp.ranges.items()},
        "sources": hp.sources,
        "missing": list(hp.missing),
    }


def build_hyperparameter_assets(sweep: Sweep) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    cfg, keys = sweep.config, sweep.keys

    @dg.asset(
        key=keys.hyperparameters,
        partitions_def=keys.crypto_fold_partitions,
        group_name=keys.group("models"),
        code_version=sweep.code_versions.hyperparameters,
        kinds={"python"},
        description="Every configured model's and active ensemble's hyperparameters (and HPO ranges when "
        "searching), resolved from the environment and the ftf_config table, with where each value came from.",
    )
    def hyperparameters(
        context: dg.AssetExecutionContext, results_store: ResultsStore
    ) -> dict[str, ModelHyperparams]:
        resolved = steps.hyperparameters(cfg, Resolver(results_store.engine()))
        cover = coverage(resolved)
        for hp in resolved.values():
            for event in hp.events:
                context.log.warning(f"{event.name} {event.fields}")
        context.add_output_metadata(
            {
                "coverage_percent": readable(cover.percent),
                "not_set": dg.MetadataValue.json(list(cover.not_set[:50])),
                "fallbacks": sum(len(hp.fallbacks) for hp in resolved.values()),
                **{f"hp/{m}": dg.MetadataValue.json(hyperparams_metadata(hp)) for m, hp in resolved.items()},
            }
        )
        return resolved

    @dg.asset_check(
        asset=keys.hyperparameters,
        name=keys.coverage_check.name,
        blocking=True,
        partitions_def=keys.crypto_fold_partitions,
        automation_condition=run_with_asset(),
        description="Every required hyperparameter key of the configured models and active ensembles is set "
        "(environment or ftf_config). Blocking: below 100% no model trains, unless hpo.allow_fallback makes it a warning.",
    )
    def hyperparameters_complete(results_store: ResultsStore) -> dg.AssetCheckResult:
        # Resolved again rather than read from the asset, so the check also runs on its own.
        cover, description = steps.hyperparameter_coverage(cfg, Resolver(results_store.engine()))
        return dg.AssetCheckResult(
            passed=cover.complete,
            severity=dg.AssetCheckSeverity.WARN if cfg.hpo.allow_fallback else dg.AssetCheckSeverity.ERROR,
            description=description,
            metadata={
                "coverage_percent": readable(cover.percent),
                "required_keys": cover.n_required,
                "not_set": dg.MetadataValue.json(list(cover.not_set[:50])),
                **evaluated_now(),
            },
        )

    @dg.asset_check(
        asset=keys.hyperparameters,
        name=keys.fallback_rate_check.name,
        additional_deps=[keys.report],
        automation_condition=run_with_report(sweep),
        description="Across the sweep, after each report: hpo_fallback_applied events per training_started "
        "over each model's last checks.fallback_rate_window materializations: WARN above "
        "checks.fallback_rate_warn (1%), ERROR above checks.fallback_rate_error (5%).",
    )
    def hpo_fallback_rate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        trainings = fallbacks = 0
        for v in steps.variants(cfg):
            if v.is_ensemble:
                continue
            records = context.instance.fetch_materializations(
                keys.model(v.name, v.feature_set), limit=cfg.checks.fallback_rate_window
            ).records
            for record in records:
                materialization = record.asset_materialization
                if materialization is not None and materialization.metadata.get("reused"):
                    continue  # an audit reused a stored model: not a training
                entry = materialization.metadata.get(FALLBACKS_METADATA) if materialization else None
                trainings += 1
                fallbacks += int(entry.value) if entry is not None else 0
        rate, level = fallback_rate_level(
            fallbacks, trainings, cfg.checks.fallback_rate_warn, cfg.checks.fallback_rate_error
        )
        return dg.AssetCheckResult(
            passed=level == "ok",
            severity=dg.AssetCheckSeverity.ERROR if level == "error" else dg.AssetCheckSeverity.WARN,
            description=f"{fallbacks} fallbacks over {trainings} recent trainings ({rate:.1%})",
            metadata={
                "fallback_rate": readable(rate),
                "fallbacks": fallbacks,
                "trainings": trainings,
                **evaluated_now(),
            },
        )

    return [hyperparameters, hyperparameters_complete, hpo_fallback_rate]
