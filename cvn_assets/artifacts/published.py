"""Files the UI shows by link: the report's figures and its HTML page, written content-addressed under
`reports/<sweep>/` of the artifact location (a local directory or S3), so a link never changes meaning and
re-running the same report writes nothing new.

Dagster shows markdown metadata inline only under 1000 characters, and a figure as a data URI is always
longer; a link to a served file is not. The embedded default serves `<artifacts>/reports` from `cvn ui`, at
the UI's port + 1 (`LOCAL_REPORTS_URL` for the default port); production serves the bucket's `reports/`
prefix from wherever its users can read it and says where in `CVN_REPORTS_URL`. With S3 and no
`CVN_REPORTS_URL`, there is nowhere to link to, and the figures stay inline (one click in the UI).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from upath import UPath

from cvn_assets.artifacts.location import ArtifactLocation

REPORTS_URL_ENV = "CVN_REPORTS_URL"
REPORTS_PREFIX = "reports"
LOCAL_REPORTS_URL = "http://127.0.0.1:3001"  # `cvn ui` on its default port, 3000, serves them at 3001


def reports_root(location: ArtifactLocation) -> UPath:
    return location.path() / REPORTS_PREFIX


def reports_url(location: ArtifactLocation, environ: Mapping[str, str] = os.environ) -> str | None:
    """Where the published files are served: `CVN_REPORTS_URL`, else `cvn ui`'s default for a local
    directory; None for S3 without it."""
    url = environ.get(REPORTS_URL_ENV, "").strip().rstrip("/")
    if url:
        return url
    return None if location.is_s3 else LOCAL_REPORTS_URL


@dataclass(frozen=True)
class Publisher:
    location: ArtifactLocation
    base_url: str | None

    def publish(self, sweep: str, data: bytes, suffix: str) -> str | None:
        """Write `data` as `reports/<sweep>/<sha256 prefix><suffix>` (once) and return its URL; None when
        nothing serves the files (the caller shows the content inline)."""
        if self.base_url is None:
            return None
        name = f"{sweep}/{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
        path = reports_root(self.location) / name
        if not path.exists():
            if not self.location.is_s3:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return f"{self.base_url}/{name}"


def publisher(location: ArtifactLocation, environ: Mapping[str, str] = os.environ) -> Publisher:
    return Publisher(location, reports_url(location, environ))
