"""Operators' metrics in the Prometheus text format (``GET /metrics``, ``prometheus-client``).

One ``Telemetry`` per process (built with the ``Runtime``) owns its own ``CollectorRegistry`` (no
global state). Labels are bounded and carry no tenant data: channel kinds (``webchat``, ``telegram``,
``waha``, ``email``, ``console`` and registered plug-ins), outcomes, alert kinds (``email``,
``telegram``, ``webhook``). No tenant, company, contact or inbox id ever becomes a label.

Series:

* ``chatcommerce_messages_received_total{channel}`` / ``chatcommerce_messages_sent_total{channel}`` /
  ``chatcommerce_send_failures_total{channel}`` — counted when the database transaction that stores
  the message (or marks it sent/failed) commits (``api.realtime.install_session_hooks``);
* ``chatcommerce_webhook_refusals_total{channel}`` — provider deliveries refused (bad signature; a
  channel kind or ``stripe``);
* ``chatcommerce_pipeline_seconds`` — histogram of ``Pipeline.process`` (answering a conversation's
  waiting messages: dialogue engine, storing replies and delivering them);
* ``chatcommerce_import_jobs_total{outcome}`` — knowledge-base imports (``ok`` / ``failed``);
* ``chatcommerce_alert_deliveries_total{kind,outcome}`` — alert deliveries (``sent`` / ``failed``).
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_SAFE_LABEL = re.compile(r"^[a-z0-9_.-]{1,32}$")
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _label(value: str | None) -> str:
    """A label value from a bounded vocabulary; anything unexpected becomes ``other``."""
    value = (value or "").lower()
    return value if _SAFE_LABEL.match(value) else "other"


class Telemetry:
    """The process's Prometheus series (see the module docstring)."""

    def __init__(self, *, channel_kinds: tuple[str, ...] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._kinds = frozenset(channel_kinds)
        self.messages_received = Counter("chatcommerce_messages_received", "Inbound customer messages stored.",
                                         ["channel"], registry=self.registry)
        self.messages_sent = Counter("chatcommerce_messages_sent", "Outbound messages the provider accepted.",
                                     ["channel"], registry=self.registry)
        self.send_failures = Counter("chatcommerce_send_failures", "Outbound messages that failed for good.",
                                     ["channel"], registry=self.registry)
        self.webhook_refusals = Counter("chatcommerce_webhook_refusals",
                                        "Provider webhook deliveries refused (signature or secret mismatch).",
                                        ["channel"], registry=self.registry)
        self.pipeline_seconds = Histogram("chatcommerce_pipeline_seconds",
                                          "Time to answer a conversation's waiting messages (seconds).",
                                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                          registry=self.registry)
        self.import_jobs = Counter("chatcommerce_import_jobs", "Knowledge-base imports by outcome.",
                                   ["outcome"], registry=self.registry)
        self.alert_deliveries = Counter("chatcommerce_alert_deliveries", "Alert deliveries by kind and outcome.",
                                        ["kind", "outcome"], registry=self.registry)

    def import_ended(self, status: str) -> None:
        """Count an import job that ended (``done`` → ``ok``, anything else → ``failed``)."""
        self.import_jobs.labels(outcome="ok" if status == "done" else "failed").inc()

    def channel(self, kind: str | None) -> str:
        """``kind`` as a label: a known channel kind, else ``other`` (bounded cardinality)."""
        value = _label(kind)
        return value if not self._kinds or value in self._kinds else "other"

    def alert_result(self, kind: str, outcome: str) -> None:
        """Count one finished alert delivery (``channels.alerts.AlertDispatcher(on_result=...)``)."""
        self.alert_deliveries.labels(kind=_label(kind), outcome=_label(outcome)).inc()

    def webhook_refused(self, kind: str) -> None:
        """Count a refused provider webhook of channel ``kind`` (or ``stripe``)."""
        self.webhook_refusals.labels(channel="stripe" if kind == "stripe" else self.channel(kind)).inc()

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)
