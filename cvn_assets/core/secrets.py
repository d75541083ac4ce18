"""Keeping secrets out of what is logged, tracked or shown: values under a secret-looking key, passwords
in URLs, and the values of secret environment variables wherever they turn up.

A key is secret when its name ends in `KEY`, `TOKEN`, `PASSWORD` or `SECRET` after an `_`, `-` or `.`
(or is one of those words), case-insensitive: `api_key`, `CVN_HPO_XGB_1H_API_TOKEN`, `db.password`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
SECRET_KEY = re.compile(r"(?:^|[_.\-])(?:key|token|password|secret)$", re.IGNORECASE)
# user:password@ in any scheme://, and ?token=... style query parameters.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^:/@\s]*):(?P<password>[^@/\s]+)@", re.I)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;](?:[^=&;\s]*[_.\-])?(?:key|token|password|secret|signature|sig)=)[^&;\s#]+", re.I
)
MIN_SECRET_LENGTH = 6  # shorter environment values ("1", "true") would mask ordinary text


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key))


def secret_values(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The values of the environment's secret-named variables (SLACK_TOKEN, MLFLOW_TRACKING_PASSWORD, ...)."""
    return frozenset(v for k, v in environ.items() if is_secret_key(k) and len(v) >= MIN_SECRET_LENGTH)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with URL passwords, secret query parameters and every value of `secrets` masked."""
    text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    text = _QUERY_SECRET.sub(rf"\g<head>{MASK}", text)
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: one may contain another
        if secret:
            text = text.replace(secret, MASK)
    return text


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `value` (JSON-like: dicts, lists, scalars) with every value under a secret key masked, at
    any depth, and every string scrubbed as `scrub_text` does."""
    secrets = frozenset(secrets)
    if isinstance(value, Mapping):
        return {k: MASK if is_secret_key(k) else scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        return scrub_text(value, secrets)
    return value


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (`weights.xgboost`), the shape tracking servers take parameters in."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat
