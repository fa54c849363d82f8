#!/bin/sh
# Container start: bring the database up to date (`flask deploy`, as `make run` does: of
# the instances starting together, on any nodes of a cluster, one migrates and seeds while
# the others wait), then replace this shell with gunicorn so it receives signals.
# The one-off command keeps out of the metrics directory, which gunicorn creates afresh.
set -eu
env -u PROMETHEUS_MULTIPROC_DIR flask deploy
exec gunicorn -c docker/gunicorn.conf.py wsgi:app "$@"
