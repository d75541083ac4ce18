"""OHLCV loaders: generic CSV/parquet tables, Binance kline dumps, S3 prefixes, the bundled sample and the
synthetic generator. Every loader returns a frame that went through `validate_ohlcv`, so nothing
downstream ever sees rejected data.
"""

from __future__ import annotations

import glob
import gzip
import io
import re
import threading
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cvn_assets.core.config import BinanceSource, SweepConfig, SyntheticSource, TableSource
from cvn_assets.core.errors import DataValidationError, SourceUnreachableError
from cvn_assets.core.ohlcv import REQUIRED_COLUMNS, ROW_COL, SOURCE_COL, validate_ohlcv
from cvn_assets.core.synthetic import generate_synthetic

BUNDLED_PREFIX = "bundled:"
TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
BINANCE_SUFFIXES = (".csv", ".zip")
# The public spot kline layout (no header): open time first, then OHLCV, then fields we do not use.
BINANCE_COLUMNS = [
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "n_trades", "taker_buy_base", "taker_buy_quote", "ignore",
]  # fmt: skip


@dataclass(frozen=True)
class RawFile:
    name: str  # shown in errors: a local path or s3://bucket/key
    data: bytes


# --- where the bytes come from -------------------------------------------------------------------


def _local_files(path: str, suffixes: tuple[str, ...]) -> list[RawFile]:
    if path.startswith(BUNDLED_PREFIX):
        name = path[len(BUNDLED_PREFIX) :]
        ref = resources.files("cvn_assets") / "data" / name
        if not ref.is_file():
            raise DataValidationError(path, f"no bundled data file named '{name}'")
        return [RawFile(path, ref.read_bytes())]
    p = Path(path).expanduser()
    if p.is_file():
        paths = [p]
    elif p.is_dir():
        paths = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(suffixes))
    else:
        paths = sorted(Path(f) for f in glob.glob(str(p)) if f.endswith(suffixes))
    if not paths:
        raise DataValidationError(path, f"no data files found (looked for {', '.join(suffixes)})")
    return [RawFile(str(f), f.read_bytes()) for f in paths]


def _s3_files(
    url: str, suffixes: tuple[str, ...], endpoint_url: str | None, timeout_s: float
) -> list[RawFile]:
    """Every object under the prefix, or a one-line error within `timeout_s` (listing and reads together).

    Socket timeouts alone do not bound a read: each call gets its own, an endpoint that drips bytes never
    trips one, and finding credentials may call out too. So the whole read runs in a worker thread under
    one deadline; past it the source is rejected at once, and the worker stops at its next call or chunk
    (its socket timeouts, no longer than `timeout_s`, end a call that hangs). The clock starts after the
    local work (imports, S3's service model), so a busy machine does not spend the endpoint's budget.
    """
    # imported here so local runs never pay for them
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.get_service_model("s3")  # loaded once and cached by the session: local work, before the clock
    session = boto3.session.Session(botocore_session=core)  # no network yet: credentials come with a client
    deadline = time.monotonic() + timeout_s
    stop = threading.Event()
    outcome: dict[str, object] = {}

    def read() -> None:
        try:
            outcome["files"] = _s3_read(session, url, suffixes, endpoint_url, timeout_s, stop)
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome["error"] = exc

    worker = threading.Thread(target=read, name=f"cvn-s3-read {url}", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        stop.set()
        raise _no_answer(url, timeout_s)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["files"]  # type: ignore[return-value]


def _no_answer(url: str, timeout_s: float) -> SourceUnreachableError:
    return SourceUnreachableError(
        url,
        f"no answer within data.timeout_s = {timeout_s:g} s (listing and reading every object); check the "
        "endpoint (data.s3_endpoint_url) and the network, or raise data.timeout_s",
    )


def _s3_read(
    session: Any,  # boto3.session.Session
    url: str,
    suffixes: tuple[str, ...],
    endpoint_url: str | None,
    timeout_s: float,
    stop: threading.Event,
) -> list[RawFile]:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

    bucket, _, prefix = url[len("s3://") :].partition("/")
    # One attempt per call (no retry): the caller's deadline bounds the whole read anyway.
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    try:
        # Finding credentials may call out (instance metadata): inside the deadline.
        client = session.client("s3", endpoint_url=endpoint_url, config=config)
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffixes)]
            if stop.is_set():
                return []
        if not keys:
            raise DataValidationError(
                url, f"no data objects under this prefix (looked for {', '.join(suffixes)})"
            )
        files = []
        for key in sorted(keys):
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            chunks = []
            for chunk in body.iter_chunks(1 << 20):
                if stop.is_set():
                    body.close()
                    return []
                chunks.append(chunk)
            files.append(RawFile(f"s3://{bucket}/{key}", b"".join(chunks)))
        return files
    except (ConnectTimeoutError, ReadTimeoutError):
        raise _no_answer(url, timeout_s) from None
    except (BotoCoreError, ClientError) as exc:
        cause = _URL_CREDENTIALS.sub(r"\1***@", " ".join(str(exc).split()))
        raise SourceUnreachableError(
            url,
            f"cannot be read ({type(exc).__name__}: {cause}); check the endpoint, the bucket and the "
            "credentials (data.s3_endpoint_url, AWS_* variables)",
        ) from None


# `scheme://user:password@host` in an endpoint URL a library error quotes: the user info is masked.
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/\s@]+@")


def collect_files(
    path: str, suffixes: tuple[str, ...], endpoint_url: str | None = None, timeout_s: float = 30.0
) -> list[RawFile]:
    if path.startswith("s3://"):
        return _s3_files(path, suffixes, endpoint_url, timeout_s)
    return _local_files(path, suffixes)


# --- parsing ---------------------------------------------------------------------------------------


# What to do about epoch seconds, per format.
BINANCE_SECONDS_ADVICE = "Binance dumps give open times in ms or µs: use the file as downloaded"
TABLE_SECONDS_ADVICE = (
    "a table source takes epoch milliseconds or microseconds, or ISO 8601 text: multiply the column by "
    "1000 or write ISO 8601 times"
)


def _epoch_to_utc(
    values: np.ndarray,
    name: str,
    what: str = "open time",
    column: str | None = None,
    seconds_advice: str = BINANCE_SECONDS_ADVICE,
) -> pd.DatetimeIndex:
    """Epoch times in milliseconds, or microseconds (Binance spot dumps since 2025): told apart by size.
    Anything else is rejected naming the row; epoch seconds are named as such, with what to do."""
    if np.issubdtype(values.dtype, np.floating):
        missing = np.flatnonzero(~np.isfinite(values))
        if missing.size:
            raise DataValidationError(name, f"{what} is missing (empty or NaN)", 1 + int(missing[0]), column)
    values = values.astype("int64")
    micros = values >= 10**14
    millis = (values >= 10**11) & ~micros
    unknown = np.flatnonzero(~(micros | millis))
    if unknown.size:
        row, value = 1 + int(unknown[0]), int(values[unknown[0]])
        if 10**8 <= value < 10**11:  # 1973 to year 5138 in seconds; as milliseconds, the first days of 1970
            as_seconds = pd.Timestamp(value, unit="s", tz="UTC")
            problem = (
                f"{what} {value} is neither milliseconds nor microseconds: it looks like epoch seconds "
                f"({as_seconds:%Y-%m-%d %H:%M:%S} UTC); {seconds_advice}"
            )
        else:
            problem = f"{what} {value} is neither milliseconds nor microseconds since the epoch"
        raise DataValidationError(name, problem, row, column)
    ns = np.where(micros, values * 1_000, values * 1_000_000)
    return pd.DatetimeIndex(pd.to_datetime(ns, utc=True))


def _with_provenance(frame: pd.DataFrame, name: str, first_row: int = 1) -> pd.DataFrame:
    frame[SOURCE_COL] = name
    frame[ROW_COL] = np.arange(first_row, first_row + len(frame))
    return frame


def parse_table(raw: RawFile) -> pd.DataFrame:
    """A CSV (plain or gzipped) or parquet file with the columns timestamp, open, high, low, close, volume."""
    if not raw.data:
        raise DataValidationError(raw.name, "the file is empty")
    try:
        if raw.name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(io.BytesIO(raw.data))
        else:
            data = gzip.decompress(raw.data) if raw.name.endswith(".gz") else raw.data
            frame = pd.read_csv(io.BytesIO(data))
    except (EOFError, gzip.BadGzipFile) as exc:
        raise DataValidationError(raw.name, f"truncated or corrupt compressed file ({exc})") from None
    except pd.errors.EmptyDataError:
        raise DataValidationError(raw.name, "the file is empty") from None
    except Exception as exc:  # parquet and CSV parser errors: name the file, keep the parser's detail
        raise DataValidationError(
            raw.name, f"cannot be read as a table ({type(exc).__name__}: {exc})"
        ) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(raw.name, f"missing column(s) {missing}; expected {REQUIRED_COLUMNS}")
    if frame.empty:
        raise DataValidationError(raw.name, "no data rows")
    frame = frame[REQUIRED_COLUMNS].copy()
    ts = frame["timestamp"]
    if pd.api.types.is_numeric_dtype(ts):
        frame["timestamp"] = _epoch_to_utc(
            ts.to_numpy(), raw.name, "timestamp", "timestamp", TABLE_SECONDS_ADVICE
        )
    else:
        frame["timestamp"] = pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")
    # Header on line 1 of a CSV: data row k is line k + 1; rows are reported 1-based as data rows.
    return _with_provenance(frame, raw.name)


def _field_counts(data: bytes, skip_header: bool) -> np.ndarray:
    """Fields on each non-blank line of a headerless CSV (the rows pandas reads, in its order)."""
    lines = [line for line in data.splitlines() if line.strip()]
    if skip_header:
        lines = lines[1:]
    return np.fromiter((line.count(b",") + 1 for line in lines), dtype=np.int64, count=len(lines))


def parse_binance(raw: RawFile) -> pd.DataFrame:
    """One monthly Binance kline dump: headerless 12-column CSV, plain or inside a zip."""
    data = raw.data
    if not data:
        raise DataValidationError(raw.name, "the file is empty")
    if raw.name.endswith(".zip"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if m.endswith(".csv")]
                if len(members) != 1:
                    raise DataValidationError(raw.name, f"expected one CSV inside the zip, found {members}")
                data = archive.read(members[0])
        except (zipfile.BadZipFile, EOFError) as exc:
            raise DataValidationError(raw.name, f"truncated or corrupt zip archive ({exc})") from None
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not part of the first field
    first_line = data.split(b"\n", 1)[0].lower()
    # Some dumps carry a header row: a first line naming the columns, never a bar whose fields are odd.
    header = 0 if first_line.startswith((b"open_time", b"open time", b"opentime")) else None
    try:
        frame = pd.read_csv(io.BytesIO(data), header=header, names=BINANCE_COLUMNS, dtype=str)
    except pd.errors.EmptyDataError:
        raise DataValidationError(raw.name, "the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataValidationError(raw.name, f"malformed CSV ({exc})") from None
    if frame.empty:
        raise DataValidationError(raw.name, "no data rows")
    fields = _field_counts(data, skip_header=header == 0)
    # A row with fewer fields is cut short; an empty cell in a complete row is a missing value, which the
    # validation names with its column. (When the lines do not map onto the parsed rows, e.g. a quoted
    # newline, any empty cell counts as a short row.)
    short = (
        fields < len(BINANCE_COLUMNS) if len(fields) == len(frame) else frame.isna().any(axis=1).to_numpy()
    )
    if short.any():
        row = int(np.flatnonzero(short)[0]) + 1
        found = f", found {fields[row - 1]}" if len(fields) == len(frame) else ""
        raise DataValidationError(
            raw.name, f"truncated row: expected {len(BINANCE_COLUMNS)} fields{found}", row
        )
    if frame["open_time"].isna().any():
        row = int(np.flatnonzero(frame["open_time"].isna().to_numpy())[0]) + 1
        raise DataValidationError(raw.name, "open time is missing (empty or NaN)", row, "open_time")
    raw_times = frame["open_time"].str.strip()
    not_integer = ~raw_times.str.fullmatch(r"\d+").fillna(False).to_numpy()
    if not_integer.any():
        row = int(np.flatnonzero(not_integer)[0]) + 1
        raise DataValidationError(
            raw.name,
            f"open time '{frame['open_time'].iloc[row - 1]}' is not a whole number of milliseconds or "
            "microseconds",
            row,
        )
    open_time = pd.to_numeric(raw_times)
    out = frame[["open", "high", "low", "close", "volume"]].copy()
    out.insert(0, "timestamp", _epoch_to_utc(open_time.to_numpy(), raw.name))
    return _with_provenance(out, raw.name)


# --- the one entry point ----------------------------------------------------------------------------


def load_ohlcv(config: SweepConfig, symbol: str) -> pd.DataFrame:
    """Load and validate the bars of one symbol of the sweep's universe."""
    source = config.universe[symbol]
    settings = config.data
    if isinstance(source, SyntheticSource):
        synthetic = sorted(s for s, src in config.universe.items() if isinstance(src, SyntheticSource))
        frames = generate_synthetic(
            synthetic,
            timeframe=config.timeframe,
            start=settings.synthetic.start,
            n_bars=settings.synthetic.n_bars,
            seed=settings.synthetic.seed,
            annual_volatility=settings.synthetic.annual_volatility,
            correlation=settings.synthetic.correlation,
            regime_switch_prob=settings.synthetic.regime_switch_prob,
        )
        raw = frames[symbol].reset_index()
        return validate_ohlcv(raw, f"synthetic:{symbol}", config.timeframe, settings.gap_tolerance_bars)
    if isinstance(source, TableSource):
        files = collect_files(source.path, TABLE_SUFFIXES, settings.s3_endpoint_url, settings.timeout_s)
        parts = [parse_table(f) for f in files]
    elif isinstance(source, BinanceSource):
        files = collect_files(source.path, BINANCE_SUFFIXES, settings.s3_endpoint_url, settings.timeout_s)
        parts = [parse_binance(f) for f in files]
    else:  # pragma: no cover - the config's discriminated union makes this unreachable
        raise TypeError(f"unknown source {source!r}")
    frame = pd.concat(parts, ignore_index=True)
    return validate_ohlcv(frame, source.path, config.timeframe, settings.gap_tolerance_bars)
