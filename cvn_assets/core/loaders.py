"""OHLCV loaders: generic CSV/parquet tables, Binance kline dumps, S3 prefixes, the bundled sample and the
synthetic generator. Every loader returns a frame that went through `validate_ohlcv`, so nothing
downstream ever sees rejected data.
"""

from __future__ import annotations

import glob
import gzip
import io
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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
    # imported here so local runs never pay for them
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = url[len("s3://") :].partition("/")
    # One attempt per call, each bounded: a silent endpoint fails this crypto in about timeout_s.
    config = Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1})
    try:
        client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffixes)]
        if not keys:
            raise DataValidationError(
                url, f"no data objects under this prefix (looked for {', '.join(suffixes)})"
            )
        return [
            RawFile(f"s3://{bucket}/{key}", client.get_object(Bucket=bucket, Key=key)["Body"].read())
            for key in sorted(keys)
        ]
    except (BotoCoreError, ClientError) as exc:
        cause = " ".join(str(exc).split())
        raise SourceUnreachableError(
            url,
            f"cannot be read ({type(exc).__name__}: {cause}); check the endpoint, the bucket and the "
            "credentials (data.s3_endpoint_url, AWS_* variables)",
        ) from None


def collect_files(
    path: str, suffixes: tuple[str, ...], endpoint_url: str | None = None, timeout_s: float = 30.0
) -> list[RawFile]:
    if path.startswith("s3://"):
        return _s3_files(path, suffixes, endpoint_url, timeout_s)
    return _local_files(path, suffixes)


# --- parsing ---------------------------------------------------------------------------------------


def _epoch_to_utc(values: np.ndarray, name: str, first_row: int = 1) -> pd.DatetimeIndex:
    """Binance open times are milliseconds, or microseconds in spot dumps since 2025: tell them apart by size."""
    values = values.astype("int64")
    micros = values >= 10**14
    millis = (values >= 10**11) & ~micros
    unknown = np.flatnonzero(~(micros | millis))
    if unknown.size:
        raise DataValidationError(
            name,
            f"open time {values[unknown[0]]} is neither milliseconds nor microseconds",
            first_row + int(unknown[0]),
        )
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
        frame["timestamp"] = _epoch_to_utc(ts.to_numpy(), raw.name)
    else:
        frame["timestamp"] = pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")
    # Header on line 1 of a CSV: data row k is line k + 1; rows are reported 1-based as data rows.
    return _with_provenance(frame, raw.name)


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
    short = frame[BINANCE_COLUMNS].isna().any(axis=1).to_numpy()
    if short.any():
        row = int(np.flatnonzero(short)[0]) + 1
        raise DataValidationError(raw.name, f"truncated row: expected {len(BINANCE_COLUMNS)} fields", row)
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
