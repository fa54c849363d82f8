"""The deployment topology on loopback: MariaDB (a throwaway database), docker/entrypoint.sh
(migrations, seed, gunicorn with three workers), nginx (HTTP and HTTPS) and Prometheus on the
shipped files."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from tests.processes import ROOT, Stack, free_port, mariadb_root, start_api, start_nginx, start_prometheus

ARTIFACTS = ROOT / "artifacts" / "e2e"
PURGE_INTERVAL = 2
WORKERS = 3


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    for program in ("nginx", "prometheus", "promtool"):
        if shutil.which(program) is None:
            pytest.fail(f"{program} is not installed (apt-get install nginx prometheus)")
    tmp = tmp_path_factory.mktemp("stack")
    api_port, metrics_port, public_port, tls_port, prometheus_port = (free_port() for _ in range(5))
    database = f"webapp_e2e_{os.getpid()}"
    database_url = f"mysql+pymysql://root@127.0.0.1/{database}"
    stack = Stack(
        tmp=tmp,
        database=database,
        database_url=database_url,
        api=f"http://127.0.0.1:{api_port}",
        metrics=f"http://127.0.0.1:{metrics_port}",
        public=f"http://127.0.0.1:{public_port}",
        public_tls=f"https://localhost:{tls_port}",
        prometheus=f"http://127.0.0.1:{prometheus_port}",
    )
    with mariadb_root() as connection:
        connection.cursor().execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FLASK_APP": "wsgi",
        "APP_ENV": "production",
        "SECRET_KEY": uuid.uuid4().hex,
        "PASSWORD_PEPPER": uuid.uuid4().hex,
        "ADMIN_PASSWORD": stack.admin_password,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(api_port),
        "METRICS_PORT": str(metrics_port),
        "WEB_CONCURRENCY": str(WORKERS),
        "PURGE_INTERVAL": str(PURGE_INTERVAL),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        "TRUSTED_PROXIES": "1",
        "LOG_FORMAT": "json",
    }
    env.pop("TEST_DATABASE_URL", None)
    try:
        start_api(stack, env)
        start_prometheus(stack, prometheus_port, metrics_port)
        stack.nginx_conf = start_nginx(stack, api_port, public_port, tls_port=tls_port)
        yield stack
    finally:
        stack.stop_all()
        with mariadb_root() as connection:
            connection.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for name, log in stack.logs.items():
            if log.exists():
                shutil.copy(log, ARTIFACTS / f"{name}.log")
        print(f"[e2e] logs copied to {ARTIFACTS}")
