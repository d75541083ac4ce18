"""Realized fills: the file's validation, the realized cost by hand, the import into SQLite and a real
PostgreSQL, the cost basis of the rows the fills cover (on import and on every partition write), the
audit, and `cvn fills import` end to end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cvn_assets.cli import main
from cvn_assets.core.errors import DataValidationError
from cvn_assets.core.fills import (
    crypto_of,
    monthly_costs,
    parse_fills,
    split_symbol,
    window_months,
    window_round_trip_bps,
)
from cvn_assets.store.audits import unlabelled_cost_basis
from cvn_assets.store.fills import import_fills, monthly_totals
from cvn_assets.store.schema import COST_BASES, finetune_baselines, finetune_results, realized_fills
from cvn_assets.store.writes import write_baselines, write_results
from cvn_assets_tests.store_rows import RUN, baseline_row, result_row, scope

HEADER = "timestamp,symbol,side,price,quantity,fee,fee currency\n"
# By hand, per side: the fee in quote over the notional.
SAMPLE = HEADER + (
    "2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,10,USD\n"  # 10 USD on 10,000: 10 bps
    "2024-03-20 12:00:00,BTCUSD,sell,60000,0.5,0.0001,BTC\n"  # 0.0001 BTC x 60,000 = 6 USD on 30,000: 2 bps
    "2024-04-02T09:30:00+02:00,BTCUSDT,buy,40000,1,20,USDT\n"  # 20 on 40,000: 5 bps
    "2024-04-02T09:30:00+02:00,btc/usdt,BUY,40000.0,1,20.0,usdt\n"  # the row above again, exactly
    "2024-03-31T23:30:00-01:00,ETH-BTC,sell,0.05,10,0.001,ETH\n"  # April in UTC; 0.00005 BTC on 0.5: 1 bps
)
# BTCUSD March: (10 + 6) / (10,000 + 30,000) = 4 bps per side (the notional-weighted mean of 10 and 2),
# 8 round trip; April: 20 / 40,000 = 5, 10 round trip; March and April: 36 / 80,000 = 4.5, 9 round trip.
MARCH, APRIL, MARCH_AND_APRIL, ETH_APRIL = 8.0, 10.0, 9.0, 2.0


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# crypto, fold, test window; whether the sample's fills cover it, and the realized round trip if so
WINDOWS: list[tuple[str, str, datetime, datetime, float | None]] = [
    ("BTCUSD", "fmar", _utc(2024, 3, 1), _utc(2024, 4, 1), MARCH),  # the end is excluded: March only
    ("BTCUSD", "fspan", _utc(2024, 3, 15), _utc(2024, 4, 15), MARCH_AND_APRIL),
    ("BTCUSD", "fmay", _utc(2024, 4, 20), _utc(2024, 5, 10), None),  # no fill in May
    ("BTCUSDT", "fmar", _utc(2024, 3, 1), _utc(2024, 4, 1), MARCH),  # a sweep naming it BTCUSDT
    ("ETHBTC", "fapr", _utc(2024, 4, 1), _utc(2024, 4, 30), ETH_APRIL),
    ("SYNA", "fmar", _utc(2024, 3, 1), _utc(2024, 4, 1), None),  # no fill names it
]


def _sample(tmp_path: Path, text: str = SAMPLE, name: str = "fills.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _window_rows(crypto: str, fold: str, start: datetime, end: datetime) -> tuple[list, list]:
    window = {"test_start": start, "test_end": end}
    results = [{**result_row(v, crypto=crypto, fold_id=fold), **window} for v in ("xgboost", "logreg")]
    baselines = [{**baseline_row(k, crypto=crypto, fold_id=fold), **window} for k in ("naive", "random")]
    return results, baselines


def _write_windows(engine: sa.Engine) -> None:
    for crypto, fold, start, end, _ in WINDOWS:
        results, baselines = _window_rows(crypto, fold, start, end)
        write_results(engine, scope(crypto, fold), results)
        write_baselines(engine, scope(crypto, fold), baselines)


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]


def _labels(engine: sa.Engine, table: sa.Table) -> dict[tuple[str, str], set[tuple[str, float | None]]]:
    labels: dict[tuple[str, str], set[tuple[str, float | None]]] = {}
    for row in _rows(engine, table):
        labels.setdefault((row["crypto"], row["fold_id"]), set()).add(
            (row["cost_basis"], row["realized_cost_bps"])
        )
    return labels


def _expected_labels() -> dict[tuple[str, str], set[tuple[str, float | None]]]:
    return {
        (crypto, fold): {("backtested_assumed", None) if cost is None else ("realized_fills", cost)}
        for crypto, fold, _, _, cost in WINDOWS
    }


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


# --- the file -----------------------------------------------------------------------------------------


def _bad(row: str) -> str:
    """The sample's first row, then `row`: its data row 2."""
    return HEADER + "2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,10,USD\n" + row + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "fills.csv: the file is empty"),
        (HEADER, "fills.csv: no data rows"),
        ("timestamp,symbol,side,price,quantity,fee\n", "missing column(s) ['fee_currency']"),
        (HEADER.strip() + ",venue\n", "unexpected column(s) ['venue']"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,10,USD,extra"), "row 2: 8 fields where the header names 7"),
        (_bad("yesterday,BTC-USD,buy,50000,0.2,10,USD"), "row 2: column 'timestamp': 'yesterday' is not an ISO 8601"),
        (_bad("2024-03-05T10:00:00Z,FOO,buy,50000,0.2,10,USD"), "row 2: column 'symbol': 'FOO' is not a pair"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,hold,50000,0.2,10,USD"), "row 2: column 'side': 'hold' is not buy or sell"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,0,0.2,10,USD"), "row 2: column 'price': 0 is not above 0"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,abc,0.2,10,USD"), "row 2: column 'price': 'abc' is not a number"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,50000,-1,10,USD"), "row 2: column 'quantity': -1 is not above 0"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,-0.5,USD"), "row 2: column 'fee': -0.5 is negative"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,,USD"), "row 2: column 'fee': '' is not a number"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,10,"), "row 2: column 'fee_currency': is empty"),
        (_bad("2024-03-05T10:00:00Z,BTC-USD,buy,50000,0.2,10,BNB"),
         "row 2: column 'fee_currency': 'BNB' is neither the pair's base nor its quote"),
        # The same fill (timestamp, pair, side, price, quantity) with another fee: not a repeat.
        (_bad("2024-03-05T10:00:00Z,BTCUSD,buy,50000,0.2,11,USD"), "row 2: column 'fee': the same fill as row 1"),
        # A blank line keeps the row numbers the file's line numbers less one.
        (HEADER + "\n" + "2024-03-05T10:00:00Z,BTC-USD,sell,50000,0.2,10,EUR\n",
         "row 2: column 'fee_currency': 'EUR'"),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_the_row_and_the_column(text: str, expected: str) -> None:
    with pytest.raises(DataValidationError) as caught:
        parse_fills("fills.csv", text.encode())
    message = str(caught.value)
    assert message.startswith("fills.csv: ") and expected in message and "\n" not in message


def test_the_first_bad_row_is_named_with_the_count_of_its_kind() -> None:
    text = (
        _bad("2024-03-05T10:00:00Z,BTC-USD,buy,-1,0.2,10,USD")
        + "2024-03-06T10:00:00Z,BTC-USD,buy,-2,1,1,USD\n"
    )
    with pytest.raises(
        DataValidationError, match=r"row 2: column 'price': -1 is not above 0 \(2 rows in all\)"
    ):
        parse_fills("fills.csv", text.encode())


def test_pairs_name_the_cryptos_sweeps_name() -> None:
    assert split_symbol("btc/usdt") == ("BTC", "USDT") and split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")  # the longest quote that ends the symbol
    for symbol in ("BTCUSDT", "BTC-USD", "btc/usdc", "BTC_USDT", "BTCUSD", "BTC:BUSD"):
        assert crypto_of(symbol) == "BTCUSD", symbol
    assert crypto_of("ETHBTC") == "ETHBTC" and crypto_of("ETHEUR") == "ETHEUR"
    assert crypto_of("SYNA") == "SYNA"  # no pair: stays itself
    # A ticker ending in T or B is not eaten by TUSD or BUSD: DOT-USD, ARB-USD (but BTC-TUSD stays).
    assert split_symbol("DOTUSD") == ("DOT", "USD") and split_symbol("ARBUSD") == ("ARB", "USD")
    assert split_symbol("BTCTUSD") == ("BTC", "TUSD") and crypto_of("DOT-USDT") == crypto_of("DOTUSD")
    with pytest.raises(ValueError, match="BASE-QUOTE"):
        split_symbol("BTC-USD-X")


def test_exact_repeats_are_read_once_and_the_monthly_cost_is_the_one_computed_by_hand() -> None:
    parsed = parse_fills("fills.csv", SAMPLE.encode())
    assert (parsed.rows_read, len(parsed.fills), parsed.repeated) == (5, 4, 1)
    fills = parsed.fills.set_index("source_row")
    assert fills.loc[2, "fee_quote"] == pytest.approx(6.0)  # a fee in the base, at the fill's price
    assert fills.loc[5, ["crypto", "month"]].tolist() == ["ETHBTC", "2024-04"]  # UTC decides the month
    monthly = {(m.crypto, m.month): m for m in monthly_costs(parsed.fills)}
    assert sorted(monthly) == [("BTCUSD", "2024-03"), ("BTCUSD", "2024-04"), ("ETHBTC", "2024-04")]
    march = monthly["BTCUSD", "2024-03"]
    assert (march.n_fills, march.notional_quote, march.fee_quote) == (
        2,
        pytest.approx(40_000),
        pytest.approx(16),
    )
    assert march.per_side_bps == pytest.approx(4.0) and march.round_trip_bps == pytest.approx(MARCH)
    assert monthly["BTCUSD", "2024-04"].round_trip_bps == pytest.approx(APRIL)
    assert monthly["ETHBTC", "2024-04"].round_trip_bps == pytest.approx(ETH_APRIL)
    btc = {m.month: m for (crypto, _), m in monthly.items() if crypto == "BTCUSD"}
    for _, _, start, end, cost in WINDOWS[:3]:
        assert window_round_trip_bps(btc, start, end) == (None if cost is None else pytest.approx(cost))


def test_a_window_overlaps_the_months_before_its_excluded_end() -> None:
    assert window_months(_utc(2024, 3, 1), _utc(2024, 4, 1)) == ["2024-03"]
    assert window_months(_utc(2024, 3, 1), _utc(2024, 4, 1, 1)) == ["2024-03", "2024-04"]
    assert window_months(datetime(2023, 12, 20), datetime(2024, 2, 2)) == ["2023-12", "2024-01", "2024-02"]


# --- the store -----------------------------------------------------------------------------------------


def test_importing_the_same_file_twice_changes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    _write_windows(engine)
    parsed = parse_fills(str(_sample(tmp_path)), SAMPLE.encode())
    first = import_fills(engine, parsed)
    assert (first.fills, first.new, first.already_stored) == (4, 4, 0)
    fills, results, baselines = (
        _rows(engine, t) for t in (realized_fills, finetune_results, finetune_baselines)
    )
    assert len(fills) == 4
    second = import_fills(engine, parsed)
    assert (second.new, second.already_stored) == (0, 4)
    assert second.relabelled == {"finetune_results": 0, "finetune_baselines": 0}
    assert _rows(engine, realized_fills) == fills
    assert _rows(engine, finetune_results) == results and _rows(engine, finetune_baselines) == baselines
    # The monthly figures the store sums are those computed by hand.
    with engine.connect() as conn:
        totals = monthly_totals(conn)
    assert {(c, m): t.round_trip_bps for c, months in totals.items() for m, t in months.items()} == {
        ("BTCUSD", "2024-03"): pytest.approx(MARCH),
        ("BTCUSD", "2024-04"): pytest.approx(APRIL),
        ("ETHBTC", "2024-04"): pytest.approx(ETH_APRIL),
    }


def test_rows_the_fills_cover_are_labelled_realized_and_the_others_keep_the_assumption(
    engine: sa.Engine, tmp_path: Path
) -> None:
    _write_windows(engine)
    before = _rows(engine, finetune_results)
    assert all(r["cost_basis"] == "backtested_assumed" and r["realized_cost_bps"] is None for r in before)
    done = import_fills(engine, parse_fills(str(_sample(tmp_path)), SAMPLE.encode()))
    covered = sum(cost is not None for *_, cost in WINDOWS)
    assert done.relabelled == {"finetune_results": 2 * covered, "finetune_baselines": 2 * covered}
    assert done.realized == done.relabelled
    assert _labels(engine, finetune_results) == _expected_labels()
    assert _labels(engine, finetune_baselines) == _expected_labels()
    # Only the label and the realized figure change: the economics stay those at the assumed cost.
    after = _rows(engine, finetune_results)
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in new.items() if k not in ("cost_basis", "realized_cost_bps")} == {
            k: v for k, v in old.items() if k not in ("cost_basis", "realized_cost_bps")
        }
    with engine.connect() as conn:
        assert unlabelled_cost_basis(conn, RUN) == []


def test_rewriting_a_partition_keeps_its_label_and_never_certifies_an_assumption(
    engine: sa.Engine, tmp_path: Path
) -> None:
    _write_windows(engine)
    import_fills(engine, parse_fills(str(_sample(tmp_path)), SAMPLE.encode()))
    for crypto, fold, start, end, _ in WINDOWS:  # a re-run: rows arrive at the assumed basis again
        results, baselines = _window_rows(crypto, fold, start, end)
        write_results(engine, scope(crypto, fold), results)
        write_baselines(engine, scope(crypto, fold), baselines)
    assert _labels(engine, finetune_results) == _expected_labels()
    assert _labels(engine, finetune_baselines) == _expected_labels()
    # A writer claiming realized fills for a window they do not cover is corrected on the write.
    results, _ = _window_rows("BTCUSD", "fmay", _utc(2024, 4, 20), _utc(2024, 5, 10))
    claimed = [{**r, "cost_basis": "realized_fills", "realized_cost_bps": 1.0} for r in results]
    write_results(engine, scope("BTCUSD", "fmay"), claimed)
    assert _labels(engine, finetune_results)["BTCUSD", "fmay"] == {("backtested_assumed", None)}


def test_fills_imported_later_relabel_rows_of_every_run(engine: sa.Engine, tmp_path: Path) -> None:
    _write_windows(engine)
    other_run = {**scope("BTCUSD", "fmar"), "run_id": "other-run"}
    results, _ = _window_rows("BTCUSD", "fmar", _utc(2024, 3, 1), _utc(2024, 4, 1))
    write_results(engine, other_run, [{**r, "run_id": "other-run"} for r in results])
    march_only = HEADER + "\n".join(SAMPLE.splitlines()[1:3]) + "\n"
    import_fills(engine, parse_fills(str(_sample(tmp_path, march_only)), march_only.encode()))
    labels = {(r["run_id"], r["fold_id"]): r["realized_cost_bps"] for r in _rows(engine, finetune_results)
              if r["crypto"] == "BTCUSD"}  # fmt: skip
    assert labels == {
        (RUN, "fmar"): MARCH,
        ("other-run", "fmar"): MARCH,
        (RUN, "fspan"): None,
        (RUN, "fmay"): None,
    }
    # April's fills arrive: the window over March and April is covered now, at both months' cost.
    done = import_fills(engine, parse_fills(str(_sample(tmp_path)), SAMPLE.encode()))
    assert (done.new, done.already_stored) == (2, 2)
    assert _labels(engine, finetune_results)["BTCUSD", "fspan"] == {("realized_fills", MARCH_AND_APRIL)}


def test_a_stored_fill_is_never_changed_and_a_refused_file_writes_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    _write_windows(engine)
    march_only = HEADER + SAMPLE.splitlines()[1] + "\n"
    import_fills(engine, parse_fills("first.csv", march_only.encode()))
    results = _rows(engine, finetune_results)
    changed = SAMPLE.replace("0.2,10,USD", "0.2,12,USD")  # the stored fill, with another fee
    with pytest.raises(DataValidationError, match=r"changed.csv: row 1: column 'fee': this fill is already "
                       r"stored with fee 10 USD \(imported from first.csv row 1\), not 12 USD"):  # fmt: skip
        import_fills(engine, parse_fills("changed.csv", changed.encode()))
    assert _count(engine, realized_fills) == 1 and _rows(engine, finetune_results) == results


@pytest.mark.parametrize(
    ("basis", "realized", "flagged"),
    [
        ("backtested_assumed", None, False),
        ("realized_fills", 8.0, False),
        ("realized_fills", None, True),  # certifying an assumption
        ("backtested_assumed", 8.0, True),  # contradicting itself
        ("realized", 8.0, True),
        ("live_guess", None, True),
    ],
)
def test_cost_basis_labelled_accepts_exactly_the_two_bases(
    engine: sa.Engine, basis: str, realized: float | None, flagged: bool
) -> None:
    assert COST_BASES == ("backtested_assumed", "realized_fills")
    write_results(engine, scope(), [result_row()])
    with engine.begin() as conn:
        conn.execute(sa.update(finetune_results).values(cost_basis=basis, realized_cost_bps=realized))
        found = unlabelled_cost_basis(conn, RUN)
    assert found == (
        [{"table": "finetune_results", "crypto": "SYNA", "fold_id": "f000", "cost_bps": 10, "cost_basis": basis,
          "realized_cost_bps": realized}]
        if flagged else []
    )  # fmt: skip


# --- cvn fills import ----------------------------------------------------------------------------------


def test_cvn_fills_import_end_to_end(
    db_url: str,
    engine: sa.Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CVN_DATABASE_URL", db_url)
    _write_windows(engine)
    path = _sample(tmp_path)
    assert main(["fills", "import", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        f"{path}: 5 rows, 4 fills (1 repeating an earlier row exactly, read once): 4 new, 0 already stored"
        in out
    )
    lines = {
        tuple(line.split()[:3]): line.split()[-1]
        for line in out.splitlines()
        if line.startswith(("BTCUSD ", "ETHBTC "))
    }
    assert lines == {("BTCUSD", "2024-03", "2"): "8.0000", ("BTCUSD", "2024-04", "1"): "10.0000",
                     ("ETHBTC", "2024-04", "1"): "2.0000"}  # fmt: skip
    assert "cost basis: 8 result rows and 8 baseline rows relabelled" in out
    assert _labels(engine, finetune_results) == _expected_labels()

    assert main(["fills", "import", str(path)]) == 0  # again: nothing changes
    out = capsys.readouterr().out
    assert (
        "0 new, 4 already stored" in out and "cost basis: 0 result rows and 0 baseline rows relabelled" in out
    )
    assert _count(engine, realized_fills) == 4

    bad = _sample(tmp_path, SAMPLE.replace("2024-04-02T09:30:00+02:00,BTCUSDT,buy,40000", "2024-05-02T00:00:00Z,BTCUSDT,buy,-4"), "bad.csv")  # fmt: skip
    assert main(["fills", "import", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: {bad}: row 3: column 'price': -4 is not above 0; correct the row and import the file again"
    )
    assert _count(engine, realized_fills) == 4 and _labels(engine, finetune_results) == _expected_labels()
    assert main(["fills", "import", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv: no such file" in capsys.readouterr().err
