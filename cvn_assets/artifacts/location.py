"""Where artifacts live: a local directory (the embedded default) or an S3 bucket and prefix, and one
value's folder in it, read and written the same way on both.

S3 is reached through two clients, configured alike from one place: s3fs (through universal_pathlib, what
Dagster's UPathIOManager walks) for small files, and pyarrow's own S3 filesystem for parquet, which streams
large frames in multipart uploads and ranged reads. pyarrow ignores `AWS_ENDPOINT_URL`, so the endpoint
override is passed to it explicitly (`endpoint_override` and `scheme`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from upath import UPath

BUCKET_ENV = "CVN_ARTIFACTS_BUCKET"
PREFIX_ENV = "CVN_ARTIFACTS_PREFIX"
DEFAULT_PREFIX = "cvn-artifacts"
# The endpoint of an S3-compatible store (MinIO, a test server); AWS's own variables are honoured too.
ENDPOINT_ENVS = ("CVN_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class ArtifactLocation:
    root: str  # a local directory, or s3://bucket/prefix
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def path(self) -> UPath:
        if not self.is_s3:
            return UPath(self.root)
        options: dict[str, object] = {}
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        return UPath(self.root, **options)

    def arrow_filesystem(self) -> pafs.FileSystem:
        return _arrow_filesystem(self)

    def describe(self) -> str:
        """Where, for logs and errors (an endpoint's user info is never shown)."""
        if not self.is_s3:
            return self.root
        endpoint = urlparse(self.endpoint_url).hostname if self.endpoint_url else None
        return f"{self.root}" + (f" at {endpoint}" if endpoint else "")


@cache
def _arrow_filesystem(location: ArtifactLocation) -> pafs.FileSystem:
    if not location.is_s3:
        return pafs.LocalFileSystem()
    options: dict[str, str] = {}
    if location.endpoint_url:
        endpoint = urlparse(location.endpoint_url)
        options["endpoint_override"] = endpoint.netloc
        options["scheme"] = endpoint.scheme or "https"
    if location.region:
        options["region"] = location.region
    return pafs.S3FileSystem(**options)


def location_from_env(default_dir: Path, environ: Mapping[str, str] = os.environ) -> ArtifactLocation:
    """S3 when `CVN_ARTIFACTS_BUCKET` is set (prefix `CVN_ARTIFACTS_PREFIX`, endpoint and region from the
    environment, credentials from AWS's usual chain), else `default_dir`."""
    bucket = environ.get(BUCKET_ENV, "").strip()
    if not bucket:
        return ArtifactLocation(str(default_dir))
    prefix = environ.get(PREFIX_ENV, DEFAULT_PREFIX).strip("/")
    endpoint = next((environ[name] for name in ENDPOINT_ENVS if environ.get(name)), None)
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    return ArtifactLocation(f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}", endpoint, region)


class ArtifactFolder:
    """One stored value's folder: named files written whole (a local file is replaced atomically, an S3
    object appears once complete) and read back; a missing file raises FileNotFoundError."""

    def __init__(self, path: UPath, location: ArtifactLocation) -> None:
        self.path = path
        self.location = location

    @property
    def _local(self) -> bool:
        return not self.location.is_s3

    def _arrow_path(self, name: str) -> str:
        target = self.path / name
        return target.path if self._local else f"{target.path}".lstrip("/")

    def write_bytes(self, name: str, data: bytes) -> None:
        target = self.path / name
        if not self._local:
            target.write_bytes(data)
            return
        partial = target.with_name(f".{name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial.path, target.path)

    def read_bytes(self, name: str) -> bytes:
        return (self.path / name).read_bytes()

    def write_frame(self, name: str, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=True)
        fs = self.location.arrow_filesystem()
        if not self._local:
            pq.write_table(table, self._arrow_path(name), filesystem=fs)
            return
        target = self._arrow_path(name)
        partial = str(Path(target).with_name(f".{name}.{os.getpid()}.partial"))
        pq.write_table(table, partial, filesystem=fs)
        os.replace(partial, target)

    def read_frame(self, name: str) -> pd.DataFrame:
        try:
            table = pq.read_table(self._arrow_path(name), filesystem=self.location.arrow_filesystem())
        except OSError as exc:  # pyarrow says "Path does not exist" or "NoSuchKey" with an OSError
            if isinstance(exc, FileNotFoundError) or "does not exist" in str(exc) or "NoSuchKey" in str(exc):
                raise FileNotFoundError(str(self.path / name)) from None
            raise
        return table.to_pandas()

    def names(self) -> set[str]:
        try:
            return {p.name for p in self.path.iterdir()}
        except FileNotFoundError:
            return set()

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)
