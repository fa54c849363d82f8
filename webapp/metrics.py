"""Prometheus metrics: requests by route rule (prometheus-flask-exporter) and business counters.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set before any worker imports prometheus_client,
so every worker writes its values to files there and the master serves their sum on
METRICS_PORT (see docker/gunicorn.conf.py). Nothing here starts a server.
"""

from __future__ import annotations

from flask import Flask
from prometheus_client import CollectorRegistry, Counter
from prometheus_flask_exporter import PrometheusMetrics

LOGINS = Counter("webapp_logins_total", "Login attempts by outcome (ok, failed)", ["outcome"])
REFRESHES = Counter(
    "webapp_token_refreshes_total", "Token refreshes by outcome (ok, rejected, reuse)", ["outcome"]
)
VERSION_REJECTIONS = Counter(
    "webapp_version_rejections_total",
    "426 answers by client version (versions not in the table are counted as 'unlisted')",
    ["version"],
)
PURGE_RUNS = Counter("webapp_purge_runs_total", "Runs of the expired-session purge")
PURGED_SESSIONS = Counter("webapp_purged_sessions_total", "Expired sessions deleted by the purge")
DB_RETRIES = Counter(
    "webapp_db_retries_total",
    "Requests whose transaction lost a conflict (deadlock, Galera certification, lock wait): "
    "retried, or exhausted (every attempt failed; answered 503)",
    ["outcome"],
)


class Metrics(PrometheusMetrics):
    """Request count and latency labelled by method, status and route rule (bounded cardinality)."""

    def __init__(self) -> None:
        super().__init__(app=None, path=None, group_by="url_rule")

    def init_app(self, app: Flask) -> None:
        # A registry per app: the exporter registers its metrics once per registry, and the
        # test suite builds many apps in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        app.extensions["metrics_registry"] = self.registry
        super().init_app(app)
