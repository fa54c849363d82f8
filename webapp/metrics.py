"""Prometheus metrics: requests by route rule (prometheus-flask-exporter) and business counters.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set before any worker imports prometheus_client,
so every worker writes its values to files there and the master serves their sum on
METRICS_PORT (see docker/gunicorn.conf.py). Nothing here starts a server.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
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
SHED_REQUESTS = Counter(
    "webapp_shed_requests_total",
    "Requests answered 503 without being served: they had waited in the queue longer than QUEUE_TIMEOUT_MS",
)
DB_RETRIES = Counter(
    "webapp_db_retries_total",
    "Requests whose transaction lost a conflict (deadlock, Galera certification, lock wait): "
    "retried, or exhausted (every attempt failed; answered 503)",
    ["outcome"],
)


# The methods the API answers; any other is one "other" series (clients cannot grow the metric).
METHODS = frozenset({"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"})


class Metrics(PrometheusMetrics):
    """Request count and latency labelled by method, status and route rule (bounded
    cardinality), under the exporter's names (flask_http_request_*).

    The exporter's own default hooks look every label set up anew on each request, a quarter
    of the cost of answering GET /roles; here one after_request hook records both metrics
    through label children it keeps per (method, rule, status), timed from the request's
    start that webapp.logs notes anyway.
    """

    def __init__(self) -> None:
        super().__init__(app=None, path=None, export_defaults=False)

    def init_app(self, app: Flask) -> None:
        # A registry per app: metrics register once per registry, and the test suite builds
        # many apps in one process.
        self.registry = CollectorRegistry(auto_describe=True)
        app.extensions["metrics_registry"] = self.registry
        super().init_app(app)
        duration = Histogram(
            "flask_http_request_duration_seconds",
            "Flask HTTP request duration in seconds",
            ("method", "url_rule", "status"),
            registry=self.registry,
        )
        total = Counter(
            "flask_http_request_total",
            "Total number of HTTP requests",
            ("method", "status"),
            registry=self.registry,
        )
        exceptions = Counter(
            "flask_http_request_exceptions_total",
            "Total number of HTTP requests which resulted in an exception",
            ("method", "status"),
            registry=self.registry,
        )
        children: dict[tuple, tuple] = {}

        def record(response: Response) -> Response:
            method = request.method if request.method in METHODS else "other"
            rule = request.url_rule
            key = (method, rule.rule if rule is not None else None, response.status_code)
            pair = children.get(key)
            if pair is None:
                status = str(response.status_code)
                pair = children[key] = (
                    duration.labels(method, str(key[1]), status),
                    total.labels(method, status),
                )
            pair[0].observe(max(0.0, time.perf_counter() - g.get("started", time.perf_counter())))
            pair[1].inc()
            return response

        def count_exception(error: BaseException | None) -> None:
            if error is not None:
                method = request.method if request.method in METHODS else "other"
                exceptions.labels(method, "500").inc()

        app.after_request(record)
        app.teardown_request(count_exception)
