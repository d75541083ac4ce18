"""Loaders on files written in each documented format, including S3 on a real (moto) endpoint."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest

from cvn_assets.core.config import parse_config
from cvn_assets.core.errors import DataValidationError, SourceUnreachableError
from cvn_assets.core.loaders import RawFile, load_ohlcv, parse_binance
from cvn_assets.core.synthetic import generate_synthetic
from cvn_assets_tests.conftest import small_raw_config
from cvn_assets_tests.fixtures import binance_rows, clean_bars, write_binance_month

BUNDLED_SHA256 = "fc037765e7baee9790181f93da6cd778ae728520082b265eb546b2fed3d2c684"


def _config_for(source: dict, **data: object) -> object:
    raw = small_raw_config(universe={"BTCUSDT": source})
    raw["data"].update(data)
    return parse_config(raw)


def _two_months() -> tuple[pd.DataFrame, pd.DataFrame]:
    bars = clean_bars(n=24 * 62, start="2024-12-01")
    return bars.iloc[: 24 * 31].reset_index(drop=True), bars.iloc[24 * 31 :].reset_index(drop=True)


@pytest.mark.parametrize("zipped", [False, True])
def test_binance_dumps_ms_then_us_are_one_continuous_series(tmp_path: Path, zipped: bool) -> None:
    dec, jan = _two_months()
    # Binance's spot dumps switched open times from milliseconds to microseconds in 2025.
    write_binance_month(tmp_path, "BTCUSDT", "2024-12", dec, "ms", zipped)
    write_binance_month(tmp_path, "BTCUSDT", "2025-01", jan, "us", zipped)
    bars = load_ohlcv(_config_for({"kind": "binance", "path": str(tmp_path)}), "BTCUSDT")
    expected = pd.concat([dec, jan]).set_index("timestamp")
    assert len(bars) == 24 * 62
    assert (bars.index == expected.index).all()
    np.testing.assert_allclose(bars["close"].to_numpy(), expected["close"].to_numpy(), rtol=1e-8)


def test_binance_header_row_is_tolerated(tmp_path: Path) -> None:
    dec, _ = _two_months()
    path = tmp_path / "with-header.csv"
    path.write_text(
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,tb_base,tb_quote,ignore\n"
        + binance_rows(dec, "ms")
    )
    frame = parse_binance(RawFile(str(path), path.read_bytes()))
    assert len(frame) == len(dec)


def test_binance_first_bar_is_never_dropped_as_a_header(tmp_path: Path) -> None:
    dec, _ = _two_months()
    text = binance_rows(dec, "ms")
    # A UTF-8 byte-order mark before the first open time: the first bar is read, not mistaken for a header.
    bom = RawFile("bom.csv", b"\xef\xbb\xbf" + text.encode())
    assert len(parse_binance(bom)) == len(dec)
    # A decimal or corrupt first open time is rejected naming row 1, not skipped.
    first, rest = text.split("\n", 1)
    for bad in (first.replace(",", ".0,", 1), "x" + first):
        with pytest.raises(DataValidationError, match="not a whole number") as info:
            parse_binance(RawFile("bad.csv", (bad + "\n" + rest).encode()))
        assert info.value.row == 1


def test_unreachable_s3_is_rejected_in_one_line_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    started = time.perf_counter()
    config = _config_for(
        {"kind": "binance", "path": "s3://market-data/binance/"},
        s3_endpoint_url="http://127.0.0.1:9",
        timeout_s=2,
    )
    with pytest.raises(SourceUnreachableError) as info:
        load_ohlcv(config, "BTCUSDT")
    message = str(info.value)
    assert message.startswith("s3://market-data/binance/:") and "\n" not in message
    assert "EndpointConnectionError" in message and "testing-secret" not in message
    assert time.perf_counter() - started < 30


@contextmanager
def silent_endpoint(kind: str, hold_s: float = 15.0) -> Iterator[str]:
    """An S3 endpoint on loopback that never finishes answering, for at most `hold_s` seconds:
    `black_hole` accepts connections and says nothing; `slow_drip` lists one object and then sends its
    body a byte at a time, never slow enough for a socket's read timeout to fire."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    done = threading.Event()
    listing = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>market-data</Name><Prefix>binance/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
        b"<IsTruncated>false</IsTruncated><Contents><Key>binance/BTCUSDT-1h-2024-12.csv</Key><Size>100000</Size>"
        b"</Contents></ListBucketResult>"
    )

    def answer(conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not done.is_set():
                try:
                    request = conn.recv(65536)
                except TimeoutError:
                    continue
                if not request:
                    return
                if kind == "black_hole":
                    continue
                if b"list-type=2" in request.split(b"\r\n", 1)[0]:
                    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {len(listing)}\r\n\r\n"
                    conn.sendall(head.encode() + listing)
                    continue
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not done.wait(0.1):
                    conn.sendall(b"1")

    def serve() -> None:
        stop_at = time.monotonic() + hold_s
        while not done.is_set() and time.monotonic() < stop_at:
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()
        done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        thread.join()
        server.close()


@pytest.mark.parametrize("kind", ["black_hole", "slow_drip"])
def test_a_silent_s3_endpoint_fails_the_source_within_its_timeout(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    timeout_s = 1.5
    with silent_endpoint(kind) as endpoint:
        config = _config_for(
            {"kind": "binance", "path": "s3://market-data/binance/"},
            s3_endpoint_url=endpoint,
            timeout_s=timeout_s,
        )
        started = time.perf_counter()
        with pytest.raises(SourceUnreachableError) as info:
            load_ohlcv(config, "BTCUSDT")
        elapsed = time.perf_counter() - started
    message = str(info.value)
    # Listing, reads and retries together: the budget plus one second (and interpreter jitter), and it did
    # wait on the endpoint rather than fail at once.
    assert timeout_s * 0.5 < elapsed < timeout_s + 1 + 0.5, elapsed
    assert message.startswith("s3://market-data/binance/: no answer within data.timeout_s = 1.5 s")
    assert "\n" not in message and "testing-secret" not in message


def test_binance_nan_volume_is_named_as_a_missing_value_not_a_truncated_row(tmp_path: Path) -> None:
    dec, _ = _two_months()
    lines = binance_rows(dec, "ms").splitlines()
    for row, cell in ((7, ""), (9, "NaN")):  # 1-based rows: an empty volume cell, then a literal NaN
        fields = lines[row - 1].split(",")
        fields[5] = cell
        lines[row - 1] = ",".join(fields)
    path = write_binance_month(tmp_path, "BTCUSDT", "2024-12", dec, "ms", zipped=False)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as info:
        load_ohlcv(_config_for({"kind": "binance", "path": str(tmp_path)}), "BTCUSDT")
    assert (info.value.source, info.value.row, info.value.column) == (str(path), 7, "volume")
    assert str(info.value) == f"{path}: row 7: column 'volume': NaN or missing value (2 rows in all)"


def test_table_epoch_seconds_are_named_as_such(tmp_path: Path) -> None:
    bars = clean_bars(n=48, start="2017-07-14")
    seconds = bars.assign(timestamp=bars.timestamp.astype("int64") // 10**9)
    assert seconds.timestamp.iloc[0] == 1_499_990_400
    seconds.to_csv(tmp_path / "seconds.csv", index=False)
    with pytest.raises(DataValidationError) as info:
        load_ohlcv(_config_for({"kind": "table", "path": str(tmp_path / "seconds.csv")}), "BTCUSDT")
    assert (info.value.row, info.value.column) == (1, "timestamp")
    assert "looks like epoch seconds (2017-07-14 00:00:00 UTC)" in str(info.value)
    assert "multiply the column by 1000 or write ISO 8601 times" in str(info.value)
    # The same times in milliseconds are read.
    millis = bars.assign(timestamp=bars.timestamp.astype("int64") // 10**6)
    millis.to_csv(tmp_path / "millis.csv", index=False)
    loaded = load_ohlcv(_config_for({"kind": "table", "path": str(tmp_path / "millis.csv")}), "BTCUSDT")
    assert (loaded.index == pd.DatetimeIndex(bars.timestamp)).all()


def test_binance_truncated_row_and_corrupt_zip_are_named(tmp_path: Path) -> None:
    dec, _ = _two_months()
    text = binance_rows(dec, "ms")
    cut = text[: text.rfind("\n", 0, len(text) - 1) + 20]  # the last line keeps only a few fields
    path = tmp_path / "BTCUSDT-1h-2024-12.csv"
    path.write_text(cut)
    with pytest.raises(DataValidationError, match="truncated row: expected 12 fields, found 2") as info:
        parse_binance(RawFile(str(path), path.read_bytes()))
    assert info.value.row == len(dec) and info.value.source == str(path)

    zipped = write_binance_month(tmp_path, "BTCUSDT", "2024-11", dec, "ms", zipped=True)
    data = zipped.read_bytes()
    with pytest.raises(DataValidationError, match="2024-11.zip.*truncated or corrupt zip"):
        parse_binance(RawFile(str(zipped), data[: len(data) // 2]))


def test_binance_open_time_in_seconds_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "seconds.csv"
    path.write_text("1704067200,1,1,1,1,1,1704070799,1,1,1,1,0\n")
    with pytest.raises(DataValidationError, match="neither milliseconds nor microseconds") as info:
        parse_binance(RawFile(str(path), path.read_bytes()))
    assert info.value.row == 1


def test_rows_of_a_later_file_are_reported_in_that_file(tmp_path: Path) -> None:
    dec, jan = _two_months()
    jan.loc[5, "volume"] = -1.0
    write_binance_month(tmp_path, "BTCUSDT", "2024-12", dec, "ms", zipped=False)
    bad = write_binance_month(tmp_path, "BTCUSDT", "2025-01", jan, "us", zipped=False)
    with pytest.raises(DataValidationError, match="negative volume") as info:
        load_ohlcv(_config_for({"kind": "binance", "path": str(tmp_path)}), "BTCUSDT")
    assert info.value.source == str(bad) and info.value.row == 6


def test_generic_csv_and_parquet_give_the_same_bars(tmp_path: Path) -> None:
    bars = clean_bars(n=200)
    bars.to_csv(tmp_path / "a.csv", index=False)
    bars.assign(timestamp=bars.timestamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        tmp_path / "iso.csv.gz", index=False
    )
    bars.to_parquet(tmp_path / "b.parquet")
    loaded = [
        load_ohlcv(_config_for({"kind": "table", "path": str(tmp_path / n)}), "BTCUSDT")
        for n in ("a.csv", "iso.csv.gz", "b.parquet")
    ]
    for frame in loaded[1:]:
        pd.testing.assert_frame_equal(frame, loaded[0], check_exact=False, rtol=1e-12, check_freq=False)


def test_s3_prefix_of_binance_dumps_and_parquet(tmp_path: Path, s3_server: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="market-data")
    dec, jan = _two_months()
    for month, frame, unit in (("2024-12", dec, "ms"), ("2025-01", jan, "us")):
        path = write_binance_month(tmp_path, "BTCUSDT", month, frame, unit, zipped=True)
        client.upload_file(str(path), "market-data", f"binance/spot/BTCUSDT/1h/{path.name}")
    pd.concat([dec, jan]).to_parquet(tmp_path / "all.parquet")
    client.upload_file(str(tmp_path / "all.parquet"), "market-data", "tables/BTCUSDT/all.parquet")

    from_s3 = load_ohlcv(
        _config_for(
            {"kind": "binance", "path": "s3://market-data/binance/spot/BTCUSDT/"}, s3_endpoint_url=s3_server
        ),
        "BTCUSDT",
    )
    from_table = load_ohlcv(
        _config_for({"kind": "table", "path": "s3://market-data/tables/BTCUSDT/"}, s3_endpoint_url=s3_server),
        "BTCUSDT",
    )
    assert len(from_s3) == 24 * 62
    pd.testing.assert_frame_equal(from_s3, from_table, check_exact=False, rtol=1e-8, check_freq=False)

    with pytest.raises(DataValidationError, match="s3://market-data/nothing/.*no data objects"):
        load_ohlcv(
            _config_for({"kind": "table", "path": "s3://market-data/nothing/"}, s3_endpoint_url=s3_server),
            "BTCUSDT",
        )


def test_bundled_real_sample_is_intact_and_attributed() -> None:
    from importlib import resources

    data_dir = resources.files("cvn_assets") / "data"
    assert hashlib.sha256((data_dir / "btcusd_1h.csv.gz").read_bytes()).hexdigest() == BUNDLED_SHA256
    assert "CryptoDataDownload" in (data_dir / "README.md").read_text()
    bars = load_ohlcv(_config_for({"kind": "table", "path": "bundled:btcusd_1h.csv.gz"}), "BTCUSDT")
    assert len(bars) == 20_111
    assert (
        str(bars.index[0]) == "2017-07-01 11:00:00+00:00"
        and str(bars.index[-1]) == "2019-10-17 09:00:00+00:00"
    )


def test_missing_local_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="nowhere.*no data files found"):
        load_ohlcv(_config_for({"kind": "table", "path": str(tmp_path / "nowhere")}), "BTCUSDT")


def test_synthetic_generator_is_seeded_correlated_and_clustered() -> None:
    kwargs = dict(timeframe="1h", start=pd.Timestamp("2020-01-01").to_pydatetime(), n_bars=20_000,
                  annual_volatility=0.7, correlation=0.6, regime_switch_prob=0.002)  # fmt: skip
    a = generate_synthetic(["X", "Y", "Z"], seed=1, **kwargs)
    b = generate_synthetic(["X", "Y", "Z"], seed=1, **kwargs)
    c = generate_synthetic(["X", "Y", "Z"], seed=2, **kwargs)
    pd.testing.assert_frame_equal(a["X"], b["X"])
    assert not np.allclose(a["X"]["close"], c["X"]["close"])
    returns = pd.DataFrame({k: np.log(v["close"]).diff() for k, v in a.items()}).dropna()
    corr = returns.corr().to_numpy()[np.triu_indices(3, 1)]
    assert np.all((corr > 0.45) & (corr < 0.75))
    abs_ret = returns["X"].abs()
    assert abs_ret.autocorr(1) > 0.1  # volatility clustering: big moves follow big moves
    annual_vol = returns["X"].std() * np.sqrt(365 * 24)
    assert 0.5 < annual_vol < 1.3
