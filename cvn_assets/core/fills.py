"""Realized fills: reading and validating a fills file, naming the crypto a fill trades, and the realized
cost arithmetic. Pure: no database, no Dagster (the store keeps the fills and labels the rows:
`cvn_assets/store/fills.py`).

The file
--------
A CSV (plain, or gzipped as `.gz`) with a header naming exactly the columns `FILL_COLUMNS`, in any order
(`fee currency` with a space, or any case, reads as `fee_currency`), one fill per row:

- `timestamp`: ISO 8601 (`2024-03-05T14:02:11.25Z`, `2024-03-05 14:02:11`); without an offset it is UTC,
  as for bars. Kept to the microsecond.
- `symbol`: the pair traded, `BASE-QUOTE` (or `/`, `_`, `:` between them), or an exchange's `BASEQUOTE`
  such as `BTCUSDT` when it ends in a quote currency of `KNOWN_QUOTES`. Any case.
- `side`: `buy` or `sell`, any case.
- `price` (quote currency per unit of base) and `quantity` (units of base): numbers above 0.
- `fee`: a number of at least 0, in `fee_currency`, which must be the pair's base or its quote, so that
  the fill's own price converts it to the quote. A fee paid in a third currency (an exchange token such
  as BNB) cannot be priced from the fill: convert it to the quote before importing.

Rejections are one line naming the file, the data row (1-based: row 1 is the line after the header;
precisely, the file's line number less one) and the column, and say what to fix. Nothing is imported
from a file with any rejected row.

A fill is identified by `FILL_KEY` (timestamp, base, quote, side, price, quantity). Rows equal in every
column (after parsing: `0.10` is `0.1`, `btc-usd` is `BTCUSD`) are one fill, read once; two rows of the
same fill with a different fee or fee currency are rejected. (Two real fills equal in every column, which
an exchange's export does not produce, would be read as one: merge them into one row first.)

Naming cryptos
--------------
`crypto_name` is the one place a pair becomes the crypto a sweep's universe names: base then quote with
no separator, as the sweep configs write them (`BTCUSD` in the demo), every dollar stablecoin
(`USD_QUOTES`) read as USD. `BTCUSDT`, `BTC-USD`, `btc/usdc` are all `BTCUSD`; `ETHBTC` stays `ETHBTC`.
A results row's crypto is read through the same rule (`crypto_of`), so a sweep whose universe says
`BTCUSDT` matches those fills too; a name that is no pair (the synthetic `SYNA`) stays itself.

Realized cost
-------------
Per fill, the cost of one side in bps: the fee in quote (the fee itself, or fee x price when paid in the
base) over the notional (price x quantity), x 1e4. Per crypto and calendar month (UTC), the
notional-weighted mean of that over the month's fills, which is sum(fee in quote) / sum(notional) x 1e4;
the realized round trip is twice the per-side figure (`MonthlyCost`).

What this measures: the fees a round trip really paid. A fill also holds whatever its price includes:
the spread crossed and the market's impact. That is slippage here: the distance between the price the
backtest assumed (the bar's close at entry, the barrier or the gapped open at exit) and the price
obtained. A fill records only the price obtained, never the price it is measured from, so fills cannot
measure slippage and the realized figure leaves it out: it is a lower bound of the all-in cost. It is a
round trip in bps, the unit of a row's assumed round trip 2 x (fee_bps + slippage_bps): the part of that
it measures is the fee part, 2 x fee_bps; slippage_bps stays an assumption on every row.

Coverage
--------
A row's test window [test_start, test_end) (end excluded, as in the fold plan) is covered when every
calendar month (UTC) it overlaps has at least one fill of the row's crypto. Its realized round trip is
then sum(fee in quote) / sum(notional) x 2 x 1e4 over the fills of those months (`window_round_trip_bps`).
A window any month of which has no fill is not covered, and gets no realized figure.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from cvn_assets.core.errors import DataValidationError

FILL_COLUMNS = ("timestamp", "symbol", "side", "price", "quantity", "fee", "fee_currency")
FILL_KEY = ("filled_at", "base", "quote", "side", "price", "quantity")
SIDES = ("buy", "sell")
# Dollar stablecoins: a pair quoted in one of these names the same crypto as its USD pair.
USD_QUOTES = ("USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI")
# The quote currencies recognized at the end of a separator-less symbol (`split_symbol` says which wins).
KNOWN_QUOTES = (*USD_QUOTES, "EUR", "GBP", "JPY", "TRY", "BTC", "ETH", "BNB")
SEPARATORS = r"[-/_:]"
# Bounded by the store's columns, so SQLite and PostgreSQL accept the same files.
CODE_MAX_LENGTH = 20  # a base, a quote, a fee currency
SYMBOL_MAX_LENGTH = 40  # the symbol as written, and the crypto (the results' crypto column)
BPS = 1e4
# Stored realized costs are rounded to 1e-6 bps: the same fills give the same stored number whatever
# order a database sums them in.
COST_DECIMALS = 6

_CODE = re.compile(rf"[A-Z0-9]{{1,{CODE_MAX_LENGTH}}}")
_GLUED = re.compile(rf"[A-Z0-9]{{2,{2 * CODE_MAX_LENGTH}}}")
_FIX = "; correct the row and import the file again"


# --- naming cryptos ---------------------------------------------------------------------------------


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a pair written `BASE-QUOTE` (or `/`, `_`, `:`) or `BASEQUOTE` ending in a known
    quote; ValueError saying how to write it otherwise."""
    text = symbol.strip().upper()
    parts = re.split(SEPARATORS, text)
    if len(parts) == 2 and all(_CODE.fullmatch(p) for p in parts):
        return parts[0], parts[1]
    if len(parts) == 1 and _GLUED.fullmatch(text):
        splits = [(text.removesuffix(q), q) for q in KNOWN_QUOTES if text.endswith(q) and len(text) > len(q)]
        splits = [(base, quote) for base, quote in splits if _CODE.fullmatch(base)]
        if splits:
            # DOTUSD is DOT-USD, not DO-TUSD, and ARBUSD is ARB-USD: a base of three or more characters
            # first (tickers rarely have fewer), then the longest quote (BTCUSDT is BTC-USDT).
            return max(splits, key=lambda split: (len(split[0]) >= 3, len(split[1])))
    raise ValueError(
        f"symbol '{symbol}' is not a pair this can read: write it BASE-QUOTE (e.g. BTC-USDT), or as "
        f"BASEQUOTE ending in one of {', '.join(KNOWN_QUOTES)}"
    )


def crypto_name(base: str, quote: str) -> str:
    """The crypto a pair trades, named as sweep configs name it: BTC + USDT -> BTCUSD."""
    return f"{base}{'USD' if quote in USD_QUOTES else quote}"


def crypto_of(name: str) -> str:
    """A sweep's crypto (or any symbol) under the same rule; a name that is no pair stays itself."""
    try:
        return crypto_name(*split_symbol(name))
    except ValueError:
        return name.strip().upper()


# --- reading a fills file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FillsFile:
    """A validated fills file: its distinct fills, one per row of `fills` (columns of the store's
    realized_fills table but `imported_at`), and how many rows it had."""

    source: str
    rows_read: int
    fills: pd.DataFrame

    @property
    def repeated(self) -> int:
        """Rows that repeated an earlier row exactly (read once)."""
        return self.rows_read - len(self.fills)


def _header(source: str, header: list[str]) -> list[str]:
    columns = [h.strip().lower().replace(" ", "_") for h in header]
    expected = ",".join(FILL_COLUMNS)
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise DataValidationError(
                source, f"the header names column '{column}' twice; expected {expected}"
            )
        seen.add(column)
    missing = [c for c in FILL_COLUMNS if c not in seen]
    if missing:
        raise DataValidationError(source, f"missing column(s) {missing}; the header must be {expected}")
    extra = [c for c in columns if c not in FILL_COLUMNS]
    if extra:
        raise DataValidationError(
            source, f"unexpected column(s) {extra}; a fills file has exactly the columns {expected}"
        )
    return columns


def _records(source: str, text: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The data rows as strings, with each one's data row number (its line number less the header's)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise DataValidationError(source, "the file is empty; expected a header and one fill per row")
        columns = _header(source, header)
        records: list[list[str]] = []
        rows: list[int] = []
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # a blank line
            row = reader.line_num - 1
            if len(fields) != len(columns):
                raise DataValidationError(
                    source,
                    f"{len(fields)} fields where the header names {len(columns)}; every row needs exactly "
                    f"one value per column (quote a value that contains a comma)",
                    row,
                )
            records.append([f.strip() for f in fields])
            rows.append(row)
    except csv.Error as exc:
        raise DataValidationError(source, f"malformed CSV ({exc})", reader.line_num - 1) from None
    if not records:
        raise DataValidationError(source, "no data rows; expected one fill per row after the header")
    return pd.DataFrame(records, columns=columns), np.asarray(rows)


@dataclass(frozen=True)
class _Problem:
    column: str
    bad: np.ndarray  # a boolean mask over the rows
    message: str  # with {value}: the first bad row's value as written


def _first_problem(source: str, frame: pd.DataFrame, rows: np.ndarray, problems: list[_Problem]) -> None:
    """Raise on the earliest row with a problem (and its first column in FILL_COLUMNS order)."""
    found = [(int(np.flatnonzero(p.bad)[0]), FILL_COLUMNS.index(p.column), i) for i, p in enumerate(problems)
             if p.bad.any()]  # fmt: skip
    if not found:
        return
    position, _, i = min(found)
    problem = problems[i]
    count = int(problem.bad.sum())
    more = f" ({count} rows in all)" if count > 1 else ""
    value = frame[problem.column].iloc[position]
    raise DataValidationError(
        source, problem.message.format(value=value) + more + _FIX, int(rows[position]), problem.column
    )


def parse_fills(source: str, data: bytes) -> FillsFile:
    """Validate a fills file's bytes (`source` names it in errors) and return its distinct fills."""
    if source.endswith(".gz") and data:
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise DataValidationError(source, f"truncated or corrupt gzip file ({exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataValidationError(source, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    frame, rows = _records(source, text)

    when = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    numbers = {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
               for c in ("price", "quantity", "fee")}  # fmt: skip
    pairs: dict[str, tuple[str, str] | None] = {}
    for symbol in frame["symbol"].unique():
        try:
            pairs[symbol] = split_symbol(symbol)
        except ValueError:
            pairs[symbol] = None
    pair = frame["symbol"].map(pairs)
    parsed = pair.notna().to_numpy()
    base = pair.map(lambda p: p[0] if p else "")
    quote = pair.map(lambda p: p[1] if p else "")
    side = frame["side"].str.lower()
    fee_currency = frame["fee_currency"].str.upper()
    price, quantity, fee = numbers["price"], numbers["quantity"], numbers["fee"]

    def not_a_number(column: str) -> _Problem:
        return _Problem(column, ~np.isfinite(numbers[column]), "'{value}' is not a number")

    _first_problem(source, frame, rows, [
        _Problem("timestamp", when.isna().to_numpy(),
                 "'{value}' is not an ISO 8601 timestamp (e.g. 2024-03-05T14:02:11Z; no offset means UTC)"),
        _Problem("symbol", frame["symbol"].str.len().to_numpy() > SYMBOL_MAX_LENGTH,
                 f"'{{value}}' is longer than {SYMBOL_MAX_LENGTH} characters"),
        _Problem("symbol", ~parsed,
                 f"'{{value}}' is not a pair this can read: write it BASE-QUOTE (e.g. BTC-USDT), or as "
                 f"BASEQUOTE ending in one of {', '.join(KNOWN_QUOTES)}"),
        _Problem("side", ~side.isin(SIDES).to_numpy(), "'{value}' is not buy or sell"),
        not_a_number("price"),
        _Problem("price", np.isfinite(price) & (price <= 0), "{value} is not above 0"),
        not_a_number("quantity"),
        _Problem("quantity", np.isfinite(quantity) & (quantity <= 0), "{value} is not above 0"),
        not_a_number("fee"),
        _Problem("fee", np.isfinite(fee) & (fee < 0), "{value} is negative (a rebate is not a fee)"),
        _Problem("fee_currency", (fee_currency == "").to_numpy(), "is empty; name the currency the fee was paid in"),
        _Problem("fee_currency", parsed & (fee_currency != "").to_numpy()
                 & (fee_currency != base).to_numpy() & (fee_currency != quote).to_numpy(),
                 "'{value}' is neither the pair's base nor its quote, so the fill's price cannot convert "
                 "it: convert the fee to the quote currency"),
    ])  # fmt: skip

    filled_at = pd.DatetimeIndex(when).floor("us")
    in_base = (fee_currency == base).to_numpy() & (fee_currency != quote).to_numpy()
    fills = pd.DataFrame(
        {
            "filled_at": filled_at,
            "symbol": frame["symbol"].to_numpy(),
            "base": base.to_numpy(),
            "quote": quote.to_numpy(),
            "crypto": [crypto_name(b, q) for b, q in zip(base, quote, strict=True)],
            "side": side.to_numpy(),
            "price": price,
            "quantity": quantity,
            "fee": fee,
            "fee_currency": fee_currency.to_numpy(),
            "notional_quote": price * quantity,
            "fee_quote": np.where(in_base, fee * price, fee),
            "month": filled_at.strftime("%Y-%m"),
            "source": source,
            "source_row": rows,
        }
    )
    distinct = fills.drop_duplicates(subset=[*FILL_KEY, "fee", "fee_currency"], keep="first")
    clashes = distinct[distinct.duplicated(subset=list(FILL_KEY), keep=False)]
    if not clashes.empty:
        keys = list(clashes[list(FILL_KEY)].itertuples(index=False))
        first, other = [clashes.iloc[i] for i, k in enumerate(keys) if k == keys[0]][:2]
        column = "fee" if other["fee"] != first["fee"] else "fee_currency"
        raise DataValidationError(
            source,
            f"the same fill as row {first['source_row']} (timestamp, symbol, side, price, quantity) with "
            f"another fee ({other['fee']:g} {other['fee_currency']} here, {first['fee']:g} "
            f"{first['fee_currency']} there); keep the row that is right and delete the other",
            int(other["source_row"]),
            column,
        )
    return FillsFile(source, len(fills), distinct.reset_index(drop=True))


def read_fills_file(path: str | Path) -> FillsFile:
    """Read and validate a local fills file."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataValidationError(str(path), "no such file")
    return parse_fills(str(path), p.read_bytes())


# --- the realized cost ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthlyCost:
    """The fills of one crypto in one calendar month (UTC), summed."""

    crypto: str
    month: str  # YYYY-MM
    n_fills: int
    notional_quote: float
    fee_quote: float

    @property
    def per_side_bps(self) -> float:
        """The notional-weighted mean cost of one side: sum(fee in quote) / sum(notional), in bps."""
        return self.fee_quote / self.notional_quote * BPS

    @property
    def round_trip_bps(self) -> float:
        return 2 * self.per_side_bps


def monthly_costs(fills: pd.DataFrame) -> list[MonthlyCost]:
    """Sum a frame of fills (crypto, month, notional_quote, fee_quote) per crypto and month."""
    grouped = fills.groupby(["crypto", "month"], sort=True).agg(
        n_fills=("fee_quote", "size"),
        notional_quote=("notional_quote", "sum"),
        fee_quote=("fee_quote", "sum"),
    )
    return [
        MonthlyCost(crypto, month, int(g.n_fills), float(g.notional_quote), float(g.fee_quote))
        for (crypto, month), g in grouped.iterrows()
    ]


def _utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(moment)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def window_months(test_start: datetime | pd.Timestamp, test_end: datetime | pd.Timestamp) -> list[str]:
    """The calendar months (UTC, YYYY-MM) a window [test_start, test_end) overlaps. A database that keeps
    no time zone (SQLite) gives the stored UTC times back naive: naive means UTC."""
    start, end = _utc(test_start), _utc(test_end)
    if end <= start:
        return []
    last = end - pd.Timedelta(microseconds=1)
    periods = pd.period_range(start.tz_localize(None).to_period("M"), last.tz_localize(None).to_period("M"))
    return [p.strftime("%Y-%m") for p in periods]


def window_round_trip_bps(
    months: Mapping[str, MonthlyCost], test_start: datetime | pd.Timestamp, test_end: datetime | pd.Timestamp
) -> float | None:
    """The realized round trip of a window from its crypto's months, or None when a month it overlaps
    has no fill (not covered)."""
    needed = window_months(test_start, test_end)
    if not needed or any(m not in months for m in needed):
        return None
    notional = sum(months[m].notional_quote for m in needed)
    fee = sum(months[m].fee_quote for m in needed)
    return round(2 * fee / notional * BPS, COST_DECIMALS)
