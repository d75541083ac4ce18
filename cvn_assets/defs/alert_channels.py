"""Where alerts go: Slack through dagster-slack, and a generic JSON webhook. Configured from the environment
when the alerts sensor ticks, never from the sweep config or the definitions, so no secret is ever part of
what the UI shows:

  SLACK_TOKEN + CVN_ALERT_SLACK_CHANNEL   a Slack bot token and the channel to post to
  CVN_ALERT_SLACK_API_URL                 optional: the Slack API's base URL (a proxy; default slack.com)
  CVN_ALERT_WEBHOOK_URL                   POST of each alert's JSON body
  CVN_UI_BASE_URL                         optional: the Dagster UI's address, for the run link in each alert

Either channel, both or none. A delivery error is reported by its kind only (an HTTP status, "connection
refused"): URLs and tokens never reach a log line.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagster_slack import SlackResource
from slack_sdk.errors import SlackApiError

Alert = dict[str, Any]
SLACK, WEBHOOK = "slack", "webhook"


class DeliveryError(Exception):
    """An alert did not reach a channel; the message says why without naming the URL or the token."""


@dataclass(frozen=True)
class AlertChannels:
    slack_token: str | None = None
    slack_channel: str | None = None
    slack_api_url: str | None = None
    webhook_url: str | None = None
    ui_base_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AlertChannels:
        def get(name: str) -> str | None:
            return environ.get(name) or None

        return cls(
            slack_token=get("SLACK_TOKEN"),
            slack_channel=get("CVN_ALERT_SLACK_CHANNEL"),
            slack_api_url=get("CVN_ALERT_SLACK_API_URL"),
            webhook_url=get("CVN_ALERT_WEBHOOK_URL"),
            ui_base_url=get("CVN_UI_BASE_URL"),
        )

    @property
    def names(self) -> list[str]:
        """The configured channels."""
        return [
            *([SLACK] if self.slack_token and self.slack_channel else []),
            *([WEBHOOK] if self.webhook_url else []),
        ]

    def run_url(self, run_id: str | None) -> str | None:
        if not (self.ui_base_url and run_id):
            return None
        return f"{self.ui_base_url.rstrip('/')}/runs/{run_id}"

    def send(self, channel: str, alert: Alert) -> None:
        if channel == WEBHOOK:
            self._post_webhook(alert)
        elif channel == SLACK:
            self._post_slack(alert)
        else:
            raise DeliveryError(f"unknown alert channel {channel!r}")

    def _post_webhook(self, alert: Alert) -> None:
        request = urllib.request.Request(
            str(self.webhook_url),
            data=json.dumps(alert, sort_keys=True).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"the webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"the webhook is unreachable ({type(reason).__name__})") from None

    def _post_slack(self, alert: Alert) -> None:
        client = SlackResource(token=str(self.slack_token)).get_client()
        client.timeout = 10
        if self.slack_api_url:
            client.base_url = self.slack_api_url.rstrip("/") + "/"
        try:
            client.chat_postMessage(channel=str(self.slack_channel), text=slack_text(alert))
        except SlackApiError as exc:
            why = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            raise DeliveryError(f"Slack refused the message ({why})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"Slack is unreachable ({type(reason).__name__})") from None


def slack_text(alert: Alert) -> str:
    """One Slack message: what failed, where, why, and the run link."""
    if alert["kind"] == "check_failed":
        return f":red_circle: {_check_line(alert)}"
    if alert["kind"] == "run_failed":
        return f":red_circle: run failed on {_where(alert)}: {alert.get('error') or ''}{_link(alert)}"
    lines = [f":warning: {len(alert['failures'])} warning checks failed"]
    return "\n".join([*lines, *(f"- {_check_line(failure)}" for failure in alert["failures"])])


def _check_line(alert: Alert) -> str:
    why = f": {alert['description']}" if alert.get("description") else ""
    return f"check *{alert['check']}* failed ({alert['severity']}) on {_where(alert)}{why}{_link(alert)}"


def _where(alert: Alert) -> str:
    cost = f"{alert['cost_bps']} bps" if alert.get("cost_bps") is not None else None
    parts = (alert.get("sweep"), alert.get("asset") or alert.get("job"), alert.get("partition"), cost)
    return " ".join(str(part) for part in parts if part is not None)


def _link(alert: Alert) -> str:
    return f" <{alert['run_url']}|run>" if alert.get("run_url") else ""
