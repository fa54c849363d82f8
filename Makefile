# The commands the README names. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

PORT ?= 8080

.PHONY: run dev test lint format e2e compose guide security client chaos cluster bench bench-scale clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

$(VENV)/.compose: requirements-compose.txt $(VENV)/.dev
	$(BIN)/pip install --quiet -r requirements-compose.txt
	touch $@

## run: migrate and seed the database (SQLite in instance/ unless DATABASE_URL), serve on PORT
run: $(VENV)/.runtime
	$(BIN)/flask deploy
	PORT=$(PORT) $(BIN)/gunicorn -c docker/gunicorn.conf.py wsgi:app

## dev: the virtualenv to work in (the runtime, the test and lint tools), nothing run
dev: $(VENV)/.dev

## test: the suite on SQLite and, when TEST_DATABASE_URL is set, on that database at the
## same time (a process per core; its output follows, from artifacts/test-database.log)
test: $(VENV)/.dev
	@status=0; \
	if [ -n "$$TEST_DATABASE_URL" ]; then \
		mkdir -p artifacts; \
		$(BIN)/pytest -q -p no:cacheprovider > artifacts/test-database.log 2>&1 & other=$$!; \
	fi; \
	env -u TEST_DATABASE_URL $(BIN)/pytest --cov --cov-report=term || status=1; \
	if [ -n "$$TEST_DATABASE_URL" ]; then \
		wait $$other || status=1; \
		echo "== the suite on TEST_DATABASE_URL"; \
		cat artifacts/test-database.log; \
	fi; \
	exit $$status

## e2e: the deployment on loopback (MariaDB, gunicorn x3, nginx, Prometheus, Chromium)
e2e: $(VENV)/.dev
	$(BIN)/pytest tests/e2e -v -s -p no:cacheprovider

## compose: compose.yml and compose.cluster.yml run for real on a Docker engine (started, and
## Debian's docker.io installed, if none answers), with local stand-ins for upstream images
compose: $(VENV)/.compose
	$(BIN)/pytest tests/compose -v -s -p no:cacheprovider

## guide: docs/development.md's "Adding a resource" followed literally in a scratch copy of the
## repository, on SQLite and on MariaDB (TEST_DATABASE_URL's server, else 127.0.0.1)
guide: $(VENV)/.dev
	$(BIN)/pytest tests/guide -v -s -p no:cacheprovider

## security: bandit (no medium or high finding), then schemathesis against a live server
security: $(VENV)/.dev
	$(BIN)/bandit -q -r webapp wsgi.py docker/gunicorn.conf.py migrations --severity-level medium
	$(BIN)/pytest tests/fuzz -v -s -p no:cacheprovider

# The OpenAPI style linter (Redocly CLI), from the npm registry, pinned.
REDOCLY_VERSION = 2.77.0
$(VENV)/node/.redocly-$(REDOCLY_VERSION): | $(BIN)/activate
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node @redocly/cli@$(REDOCLY_VERSION)
	touch $@

## client: what a client developer does: the live document through the OpenAPI validator and
## a style linter, a typed client generated from it, a scenario on it under mypy --strict
client: $(VENV)/.dev $(VENV)/node/.redocly-$(REDOCLY_VERSION)
	$(BIN)/pytest tests/client -v -s -p no:cacheprovider

## chaos: faults injected for real on loopback: database outage, races, several instances,
## graceful restarts, a 5-minute soak (MariaDB, gunicorn, nginx)
chaos: $(VENV)/.dev
	$(BIN)/pytest tests/chaos -v -s -p no:cacheprovider

## cluster: a 3-node MariaDB Galera cluster and HAProxy on loopback, from the files
## compose.cluster.yml runs (replication, health-check failover, a killed node rejoining)
cluster: $(VENV)/.dev
	@if ! command -v mariadbd >/dev/null || ! command -v mariadb-install-db >/dev/null \
		|| ! command -v rsync >/dev/null || ! command -v haproxy >/dev/null \
		|| [ ! -e /usr/lib/galera/libgalera_smm.so ]; then \
		apt-get update && apt-get install -y --no-install-recommends galera-4 mariadb-server rsync haproxy; \
	fi
	$(BIN)/pytest tests/cluster -v -s -p no:cacheprovider

## bench: the API against its floors, one sync worker on MariaDB, wrk on the other core
## (BENCH_ARGS=--profile adds a py-spy profile, --skip-growth skips the 1M-item phase)
bench: $(VENV)/.dev
	$(BIN)/python tests/bench/run.py $(BENCH_ARGS)

## bench-scale: the same, grown to 10M items and 1M users (about 35 minutes; not in CI)
bench-scale: $(VENV)/.dev
	$(BIN)/python tests/bench/run.py --scale 10000000 $(BENCH_ARGS)

## lint: ruff's linter and formatter check
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .coverage .ruff_cache
