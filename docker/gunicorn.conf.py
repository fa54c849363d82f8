"""gunicorn settings, all from the environment: ``gunicorn -c docker/gunicorn.conf.py wsgi:app``.

The master never imports the application (only ``webapp.logs``), so a HUP reload starts
workers on the current code. Metrics: each worker writes to PROMETHEUS_MULTIPROC_DIR and
the master serves their sum on METRICS_PORT.
"""

import contextlib
import errno
import json
import os
import shutil
import socket
import tempfile
import time

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http.errors import ParseException
from gunicorn.workers.sync import SyncWorker

from webapp.logs import formatter_class

host = os.environ.get("HOST", "127.0.0.1")
port = int(os.environ.get("PORT", "8080"))
metrics_port = int(os.environ.get("METRICS_PORT", "8000"))

# Set before any worker imports prometheus_client: it picks its storage at import time.
metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"webapp-metrics-{port}")
)

bind = [f"{host}:{port}"]
# gunicornc's control socket, one per port: several instances on one host keep their own.
control_socket = os.path.join(tempfile.gettempdir(), f"gunicorn-{port}.ctl")
# WEB_CONCURRENCY is the gunicorn convention for the worker count.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))


class DrainingSyncWorker(SyncWorker):
    """The sync worker, plus: on a graceful stop (SIGTERM, a HUP reload, max_requests) it
    first serves the connections already queued on the socket, so a request sent just
    before the signal is answered instead of reset when the last worker closes the socket."""

    def run(self):
        super().run()
        # Bounded: under steady load the queue refills, and the stop must not wait on it.
        deadline = time.monotonic() + min(5, self.cfg.graceful_timeout / 2)
        for listener in self.sockets:
            while time.monotonic() < deadline:
                try:
                    self.accept(listener)  # the socket is non-blocking: EAGAIN once empty
                except OSError as error:
                    if error.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                        break
                    raise


worker_class = "gthread" if threads > 1 else DrainingSyncWorker
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, in-flight requests get this long to finish before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# At least nginx's own limits (8 KB), so over-long requests meet nginx's problem documents.
limit_request_line = 8190
limit_request_field_size = 8190
# Recycle workers now and then (jittered so they do not all restart together).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def write_problem(sock, status: int, reason: str, message: str) -> None:
    """What gunicorn answers itself (a request line or header over its limits, a request that
    is not HTTP) as a problem document like the app's, not an HTML page."""
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": message[:200] or reason}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nX-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# The workers' error path calls util.write_error; every worker is forked after this runs.
util.write_error = write_problem

_linger = util.close_graceful


def close_promptly(sock, timeout: float = 2.0, max_drain: int = 65536) -> None:
    """Close a client connection after its response without waiting for the peer to close
    first, unless it sent data the worker did not read.

    gunicorn lingers on every close (RFC 9112, 9.6): closing with unread data in the receive
    buffer makes the kernel answer with a reset, which can destroy the response on its way.
    But a sync worker that lingers is a worker that serves nothing: behind a busy nginx it
    waited for each FIN long enough to cost 10 to 20 % of the throughput under overload. With
    nothing unread (nginx never sends more after its request), closing at once is as safe;
    with something unread, it lingers as gunicorn would.
    """
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:  # nothing unread: no reset to fear
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        sock.close()
        return
    except OSError:  # already gone
        sock.close()
        return
    _linger(sock, timeout, max_drain)


# The sync worker closes every connection through util.close_graceful.
util.close_graceful = close_promptly

# At most what nginx lets through (client_max_body_size 1m), and a little more.
DRAIN_LIMIT = 2 * 1024 * 1024


def post_request(worker, req, environ, resp):
    """Read the rest of a body the app answered without reading (a 404 from the URL alone, a
    401 before the body), up to DRAIN_LIMIT. Otherwise the connection closes while nginx may
    still be writing that body: the close resets it, and nginx answers 502 in the app's place.
    A body with nothing left to read costs one call that returns at once."""
    left = DRAIN_LIMIT
    with contextlib.suppress(OSError, ParseException):  # the client is gone: nothing to save
        while left > 0 and (chunk := req.body.read(min(left, 65536))):
            left -= len(chunk)


class AppFormatLogger(Logger):
    """gunicorn's own lines in the app's LOG_FORMAT. gunicorn's access log stays off: the
    app writes one access line per request itself (it knows the user and client version)."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter_class()())


logger_class = AppFormatLogger
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()


def on_starting(server):
    """Start from an empty metrics directory (only once: not again on a HUP reload)."""
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)


def when_ready(server):
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    GunicornPrometheusMetrics.start_http_server_when_ready(metrics_port, host)
    server.log.info("metrics on http://%s:%s/metrics", host, metrics_port)


def post_worker_init(worker):
    from webapp import check_deployment
    from webapp.jobs import start_scheduler

    check_deployment(worker.wsgi)  # raises, so the worker (and gunicorn) refuses to start
    start_scheduler(worker.wsgi)


def worker_exit(server, worker):
    from webapp.jobs import stop_scheduler

    stop_scheduler()


def child_exit(server, worker):
    """Drop the live-gauge files of a worker that died, so sums stay right."""
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
