"""Hyperparameters from configuration: key naming, the type table, the resolver and the ftf_config table."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from cvn_assets.cli import main
from cvn_assets.core.config import parse_config
from cvn_assets.core.errors import ConfigError
from cvn_assets.harness import registry
from cvn_assets.hyperparams.keys import default_key, parse_key, range_keys
from cvn_assets.hyperparams.model_params import coverage, resolve_model, resolve_sweep
from cvn_assets.hyperparams.resolver import HyperparameterError, Resolver, validate_assignment
from cvn_assets.hyperparams.seeding import apply_seed, plan_seed, seed_values
from cvn_assets.hyperparams.types import param_type
from cvn_assets.store.hp_config import get_value, history, set_value
from cvn_assets_tests.conftest import small_raw_config

KEY = "CVN_HPO_XGB_1H_MAX_DEPTH"


def test_keys_name_model_code_timeframe_and_param() -> None:
    assert default_key("xgboost", "1h", "max_depth") == KEY
    assert default_key("catboost", "15m", "l2_leaf_reg") == "CVN_HPO_CB_15M_L2_LEAF_REG"
    assert range_keys("lightgbm", "1d", "learning_rate") == tuple(
        f"CVN_HPO_LGB_1D_LEARNING_RATE_RANGE_{p}" for p in ("MIN", "MAX", "SCALE")
    )
    parsed = parse_key("CVN_HPO_LR_4H_C_RANGE_MAX")
    assert (parsed.model, parsed.timeframe, parsed.param, parsed.part) == ("logreg", "4h", "C", "RANGE_MAX")
    for bad in ("CVN_HPO_ZZ_1H_X", "CVN_HPO_XGB_7M_MAX_DEPTH", "HPO_XGB_1H_MAX_DEPTH"):
        with pytest.raises(KeyError, match="not a hyperparameter key"):
            parse_key(bad)


def test_the_type_table_is_the_one_source_of_types() -> None:
    assert (
        param_type("max_depth") is int and param_type("LEARNING_RATE") is float and param_type("c") is float
    )
    with pytest.raises(KeyError, match="no declared type; add it to PARAM_TYPES"):
        param_type("mystery")


def test_environment_wins_over_the_table(engine: sa.Engine) -> None:
    set_value(engine, KEY, "5", "alice")
    assert Resolver(engine, environ={}).resolve("xgboost", "1h", "max_depth") == 5
    assert Resolver(engine, environ={KEY: "9"}).resolve("xgboost", "1h", "max_depth") == 9


def test_missing_key_fails_naming_it_and_how_to_set_it(engine: sa.Engine) -> None:
    with pytest.raises(HyperparameterError) as info:
        Resolver(engine, environ={}).resolve("xgboost", "1h", "max_depth")
    assert info.value.key == KEY
    assert f"cvn hp set {KEY}" in str(info.value) and "cvn hp seed --apply" in str(info.value)


def test_fallback_is_visible_as_a_warning_event(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cvn_assets.events"):
        assert Resolver(engine, environ={}).resolve("xgboost", "1h", "max_depth", fallback=4) == 4
    record = next(r for r in caplog.records if "hpo_fallback_applied" in r.getMessage())
    assert (
        record.levelno == logging.WARNING
        and KEY in record.getMessage()
        and '"value": "4"' in record.getMessage()
    )


def test_unparseable_value_fails_naming_the_key(engine: sa.Engine) -> None:
    with pytest.raises(HyperparameterError, match=f"{KEY}: 'deep' is not a valid int"):
        Resolver(engine, environ={KEY: "deep"}).resolve("xgboost", "1h", "max_depth")


def _range(**values: str) -> dict[str, str]:
    keys = range_keys("xgboost", "1h", "learning_rate")
    return dict(zip(keys, (values.get("low"), values.get("high"), values.get("scale")), strict=True))


def test_hpo_ranges_are_complete_ordered_and_scaled() -> None:
    ok = Resolver(None, environ=_range(low="0.01", high="0.3", scale="log"))
    assert ok.resolve_hpo_range("xgboost", "1h", "learning_rate") == (0.01, 0.3, "log")
    cases = [
        (_range(low="0.01", high="0.3"), "_RANGE_SCALE: is not set"),
        (_range(low="0.5", high="0.3", scale="linear"), "range min 0.5 is above max 0.3"),
        (_range(low="0.01", high="0.3", scale="cubic"), "scale 'cubic' is not one of"),
        (_range(low="0", high="0.3", scale="log"), "log-scale range needs min > 0"),
        (_range(low="x", high="0.3", scale="log"), "'x' is not a valid float"),
    ]
    for environ, message in cases:
        with pytest.raises(HyperparameterError, match=message):
            Resolver(None, environ={k: v for k, v in environ.items() if v is not None}).resolve_hpo_range(
                "xgboost", "1h", "learning_rate"
            )


def test_every_change_is_kept_in_history(engine: sa.Engine) -> None:
    assert set_value(engine, KEY, "5", "alice") is True
    assert set_value(engine, KEY, "5", "bob") is False  # same value: no change, no history row
    assert set_value(engine, KEY, "7", "bob") is True
    with engine.connect() as conn:
        assert get_value(conn, KEY) == "7"
        assert [(old, new, who) for old, new, who, _ in history(conn, KEY)] == [
            (None, "5", "alice"),
            ("5", "7", "bob"),
        ]


def test_set_validates_before_writing() -> None:
    validate_assignment(KEY, "6")
    validate_assignment(f"{KEY}_RANGE_SCALE", "log")
    with pytest.raises(HyperparameterError, match="'six' is not a valid int"):
        validate_assignment(KEY, "six")
    with pytest.raises(HyperparameterError, match="scale 'linearish'"):
        validate_assignment(f"{KEY}_RANGE_SCALE", "linearish")


def test_cli_set_get_list(tmp_path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    home = str(tmp_path / "h")
    assert main(["hp", "set", KEY, "6", "--by", "alice", "--home", home]) == 0
    assert main(["hp", "set", KEY, "7", "--by", "bob", "--home", home]) == 0
    assert main(["hp", "get", KEY, "--home", home]) == 0
    out = capsys.readouterr().out
    assert f"{KEY} = 7  (ftf_config)" in out and "alice: <unset> -> 6" in out and "bob: 6 -> 7" in out
    assert main(["hp", "list", "CVN_HPO_XGB", "--home", home]) == 0
    assert f"{KEY} = 7" in capsys.readouterr().out
    assert main(["hp", "set", KEY, "deep", "--home", home]) == 2
    assert "'deep' is not a valid int" in capsys.readouterr().err
    assert main(["hp", "get", "CVN_HPO_XGB_1H_GAMMA", "--home", home]) == 1


def test_seed_is_idempotent_and_skips_conflicts_unless_forced(engine: sa.Engine, tmp_path) -> None:  # noqa: ANN001
    from cvn_assets.hyperparams.seeding import apply_seed, plan_seed, seed_values

    values = tmp_path / "values.yaml"
    values.write_text(
        "xgboost:\n  defaults: {max_depth: 5}\n  ranges: {max_depth: [3, 8, linear]}\n"
        "  per_timeframe: {1h: {max_depth: 6}}\n"
    )
    seeds = seed_values(["xgboost"], ["1h", "4h"], path=values)
    assert len(seeds) == 2 * 4
    flagged = {s.key: s.replicated for s in seeds}
    assert flagged["CVN_HPO_XGB_1H_MAX_DEPTH"] is False and flagged["CVN_HPO_XGB_4H_MAX_DEPTH"] is True
    assert {s.key: s.value for s in seeds}["CVN_HPO_XGB_1H_MAX_DEPTH"] == "6"

    with engine.connect() as conn:
        assert {a.action for a in plan_seed(conn, seeds, force=False)} == {"add"}  # a dry run writes nothing
        assert get_value(conn, "CVN_HPO_XGB_4H_MAX_DEPTH") is None
    with engine.connect() as conn:
        assert apply_seed(engine, plan_seed(conn, seeds, force=False)) == 8
    with engine.connect() as conn:
        assert apply_seed(engine, plan_seed(conn, seeds, force=False)) == 0  # same values: no-op

    set_value(engine, "CVN_HPO_XGB_4H_MAX_DEPTH", "4", "alice")
    with engine.connect() as conn:
        actions = {a.seed.key: a.action for a in plan_seed(conn, seeds, force=False)}
        assert actions["CVN_HPO_XGB_4H_MAX_DEPTH"] == "conflict"
        apply_seed(engine, plan_seed(conn, seeds, force=False))
        assert get_value(conn, "CVN_HPO_XGB_4H_MAX_DEPTH") == "4"  # an operator's value is kept
    with engine.connect() as conn:
        apply_seed(engine, plan_seed(conn, seeds, force=True))
        assert get_value(conn, "CVN_HPO_XGB_4H_MAX_DEPTH") == "5"


def test_values_file_covers_every_in_tree_model_with_typed_parameters() -> None:
    from cvn_assets.hyperparams.seeding import load_values, seed_values

    values = load_values()
    assert {"xgboost", "lightgbm", "catboost", "logreg"} <= set(values)
    assert len(seed_values(list(values))) > 0  # every value parses to its declared type


def test_cli_seed_and_audit(tmp_path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    home = str(tmp_path / "h")
    assert main(["hp", "audit", "--home", home]) == 1
    assert "0.0% of" in capsys.readouterr().out
    assert main(["hp", "seed", "--dry-run", "--home", home]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing written" in out and "[TODO_PER_TF]" in out
    assert main(["hp", "audit", "--home", home]) == 1
    assert main(["hp", "seed", "--apply", "--home", home]) == 0
    assert main(["hp", "seed", "--apply", "--home", home]) == 0
    assert "applied: 0 keys written" in capsys.readouterr().out
    assert main(["hp", "audit", "--home", home]) == 0
    # The default sweep: three fixed models' defaults, logreg's defaults and ranges (it searches), the stackers' defaults.
    assert "100.0% of 32 required keys set" in capsys.readouterr().out


def test_a_model_resolves_every_key_it_needs_with_its_source(engine: sa.Engine) -> None:
    seeds = seed_values(["xgboost"], ["1h"])
    with engine.connect() as conn:
        apply_seed(engine, plan_seed(conn, seeds, force=False))
    set_value(engine, "CVN_HPO_XGB_1H_GAMMA", "0.5", "alice")  # an operator adds a parameter: no code change
    resolver = Resolver(engine, environ={KEY: "7"})
    fixed = resolve_model(resolver, "xgboost", "1h", search=False, allow_fallback=False)
    assert fixed.values["max_depth"] == 7 and fixed.sources[KEY] == "environment"
    assert fixed.values["gamma"] == 0.5 and fixed.sources["CVN_HPO_XGB_1H_GAMMA"] == "ftf_config"
    assert fixed.values["n_estimators"] == 1000 and not fixed.ranges and not fixed.missing
    searched = resolve_model(resolver, "xgboost", "1h", search=True, allow_fallback=False)
    assert (
        searched.ranges["learning_rate"] == (0.005, 0.2, "log") and searched.n_present == searched.n_required
    )
    assert searched.fingerprint != fixed.fingerprint


def test_missing_keys_are_listed_and_fallbacks_are_explicit(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = Resolver(engine, environ={KEY: "7"})
    strict = resolve_model(resolver, "xgboost", "1h", search=True, allow_fallback=False)
    assert KEY not in strict.missing and "CVN_HPO_XGB_1H_LEARNING_RATE_RANGE_SCALE" in strict.missing
    with pytest.raises(HyperparameterError, match="CVN_HPO_XGB_1H_N_ESTIMATORS: is not set"):
        strict.require_complete()
    cover = coverage({"xgboost": strict})
    assert cover.n_required == 7 + 7 * 3 and len(cover.not_set) == cover.n_required - 1
    assert cover.percent == pytest.approx(100 / 28)

    with caplog.at_level(logging.WARNING, logger="cvn_assets.events"):
        lenient = resolve_model(resolver, "xgboost", "1h", search=True, allow_fallback=True)
    assert not lenient.missing and lenient.values["n_estimators"] == 1000 and lenient.values["max_depth"] == 7
    assert len(lenient.fallbacks) == len(lenient.events) == cover.n_required - 1
    assert sum("hpo_fallback_applied" in r.getMessage() for r in caplog.records) == len(lenient.events)
    assert not coverage({"xgboost": lenient}).complete  # a fallback is not configuration


def test_half_set_range_or_unknown_model_fails_naming_the_key() -> None:
    low, high, _ = range_keys("xgboost", "1h", "max_depth")
    with pytest.raises(HyperparameterError, match="_MAX_DEPTH_RANGE_SCALE: is not set"):
        resolve_model(Resolver(None, environ={low: "2", high: "4"}), "xgboost", "1h", search=True,
                      allow_fallback=True)  # fmt: skip
    registry.register_model("nokeys")(type("NoKeys", (), {}))
    try:
        with pytest.raises(HyperparameterError, match="no hyperparameters are configured for model 'nokeys'"):
            resolve_model(Resolver(None, environ={}), "nokeys", "1h", search=False, allow_fallback=True)
    finally:
        registry._MODELS.pop("nokeys")
        registry._MODEL_CODES.pop("nokeys")


def test_the_sweep_timeframe_reaches_every_resolver_call() -> None:
    config = parse_config(
        small_raw_config(timeframe="15m", models={"xgboost": {}, "logreg": {"hpo": "search"}})
    )
    environ = {s.key: s.value for s in seed_values(["xgboost", "logreg", "stack_logreg_shrink"], ["15m"])}
    resolved = resolve_sweep(Resolver(None, environ=environ), config, ["stack_logreg_shrink"])
    assert set(resolved) == {"xgboost", "logreg", "stack_logreg_shrink"}
    keys = [k for hp in resolved.values() for k in hp.sources]
    assert keys and all("_15M_" in k for k in keys) and resolved["logreg"].ranges["C"][2] == "log"
    assert resolved["stack_logreg_shrink"].values == {"C": 0.5} and not resolved["stack_logreg_shrink"].search


def test_meta_labeling_takes_its_classifiers_hyperparameters_from_the_resolver() -> None:
    environ = {s.key: s.value for s in seed_values(["xgboost", "meta_label"], ["1h"])}
    for enabled in (False, True):
        config = parse_config(small_raw_config(harness={"meta_labeling": {"enabled": enabled}}))
        resolved = resolve_sweep(Resolver(None, environ=environ), config, [])
        assert ("meta_label" in resolved) is enabled
    assert (
        resolved["meta_label"].values == {"C": 1.0} and "CVN_HPO_META_1H_C" in resolved["meta_label"].sources
    )
    with pytest.raises(ConfigError, match="harness.meta_labeling.params"):
        parse_config(small_raw_config(harness={"meta_labeling": {"enabled": True, "params": {"C": 2.0}}}))
