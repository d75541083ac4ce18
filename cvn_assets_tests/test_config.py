from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cvn_assets.core.config import load_config, parse_config
from cvn_assets.core.errors import ConfigError
from cvn_assets.core.sweep_plan import plan_sweep
from cvn_assets_tests.conftest import small_raw_config


def test_default_config_loads_and_names_its_run() -> None:
    config = load_config()
    assert config.run_id == f"demo-{config.fingerprint}"
    assert "BTCUSD" in config.universe and config.universe["BTCUSD"].kind == "table"
    assert config.costs_bps == sorted(config.costs_bps)


def test_run_id_is_stable_and_changes_with_any_setting() -> None:
    a, b = parse_config(small_raw_config()), parse_config(small_raw_config())
    assert a.run_id == b.run_id
    changed = small_raw_config(costs_bps=[0, 10, 20])
    assert parse_config(changed).run_id != a.run_id
    searched = small_raw_config()
    searched["models"]["xgboost"] = {"hpo": "search"}
    assert parse_config(searched).run_id != a.run_id


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"bogus": 1}, "bogus"),
        ({"labels": {"horizon_bars": 12, "typo_key": 1}}, "labels.typo_key"),
        ({"costs_bps": [10, -5]}, "costs_bps.1"),
        ({"costs_bps": [10, 10]}, "costs_bps"),
        ({"costs_bps": []}, "costs_bps"),
        ({"costs_bps": ["ten"]}, "costs_bps.0"),
        ({"universe": {}}, "universe"),
        ({"universe": {"btc": {"kind": "synthetic"}}}, "universe.btc.[key]"),
        ({"timeframe": "7m"}, "timeframe"),
        ({"folds": {"train": "ninety days"}}, "folds.train"),
        ({"folds": {"purge_bars": 3}}, "folds.purge_bars"),
        ({"models": {}}, "models"),
        (
            {"models": {"xgboost": {"params": {"max_depth": 4}}}},
            "models.xgboost.params",
        ),  # not here: ftf_config
        ({"models": {"xgboost": {"hpo": "grid"}}}, "models.xgboost.hpo"),
        ({"hpo": {"n_trials": 0}}, "hpo.n_trials"),
        ({"hpo": {"pruner": "hyperband"}}, "hpo.pruner"),
        ({"checks": {"fallback_rate_warn": 0.1, "fallback_rate_error": 0.05}}, "checks"),
        ({"backtest": {"entry_threshold": 1.5}}, "backtest.entry_threshold"),
        ({"labels": {"horizon_bars": "long"}}, "labels.horizon_bars"),
        # Cost levels are whole bps from 0 to 10,000: no boolean (true is not 1), string, float or overflow.
        ({"costs_bps": [True, 10]}, "costs_bps.0"),
        ({"costs_bps": ["10"]}, "costs_bps.0"),
        ({"costs_bps": [2.5]}, "costs_bps.0"),
        ({"costs_bps": [10, 10_001]}, "costs_bps.1"),
        ({"costs_bps": [3_000_000_000]}, "costs_bps.0"),
        ({"backtest": {"slippage_bps": 20_000}}, "backtest.slippage_bps"),
        # What a results column bounds is checked here, so SQLite and PostgreSQL accept the same configs.
        ({"strategy": "x" * 101}, "strategy"),
    ],
)
def test_bad_config_fails_naming_the_key(override: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(small_raw_config(**override), source="sweep.yaml")
    assert info.value.key == key
    assert f"'{key}'" in str(info.value) and "sweep.yaml" in str(info.value)


def test_a_fold_plan_longer_than_the_data_names_each_crypto() -> None:
    config = parse_config(small_raw_config(folds={"train": "400d", "validation": "20d", "test": "20d"}))
    plan = plan_sweep(config)
    assert plan.folds == () and set(plan.rejected) == {"SYNA", "SYNB"}
    assert "shorter than one fold needs" in plan.rejected["SYNA"] and "2021-01-01" in plan.rejected["SYNA"]


def test_duplicate_keys_and_coerced_numbers_are_rejected(tmp_path: Path) -> None:
    dup = tmp_path / "dup.yaml"
    dup.write_text(yaml.safe_dump(small_raw_config()) + "seed: 7\nseed: 8\n")
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        load_config(dup)
    for costs in (["0", 10], [True, 10]):
        with pytest.raises(ConfigError, match="costs_bps.0"):
            parse_config(small_raw_config(costs_bps=costs))


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml.*not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


@pytest.mark.parametrize(
    ("override", "key", "message"),
    [
        ({"models": {"nope": {}}}, "models.nope", "no model registered as 'nope'"),
        ({"ensembles": {"nope": {}}}, "ensembles.nope", "no ensemble registered as 'nope'"),
        (
            {"ensembles": {"blend_avg": {}}},
            "ensembles.blend_avg",
            "base models ['lightgbm', 'catboost'] are not configured",
        ),
    ],
)
def test_unknown_model_or_ensemble_fails_naming_the_key(override: dict, key: str, message: str) -> None:
    from cvn_assets import steps

    plan = plan_sweep(parse_config(small_raw_config(**override)))
    with pytest.raises(ConfigError) as info:
        steps.model_names(plan.config)
        steps.ensemble_names(plan.config)
    assert info.value.key == key and message in str(info.value)


def test_disabled_ensemble_does_not_run() -> None:
    from cvn_assets import steps

    raw = small_raw_config()
    raw["models"] |= {"lightgbm": {}, "catboost": {}}
    assert "blend_avg" in steps.ensemble_names(parse_config(raw))
    raw["ensembles"] = {"blend_avg": {"enabled": False}}
    assert "blend_avg" not in steps.ensemble_names(parse_config(raw))
