#!/bin/sh
# Container start: apply migrations and seed (both idempotent and safe when several
# instances start at once), then replace this shell with gunicorn so it receives signals.
# The one-off commands keep out of the metrics directory, which gunicorn creates afresh.
set -eu
env -u PROMETHEUS_MULTIPROC_DIR flask db upgrade
env -u PROMETHEUS_MULTIPROC_DIR flask seed
exec gunicorn -c docker/gunicorn.conf.py wsgi:app "$@"
