# The two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS_STAMP := $(VENV)/.models
DEV_STAMP := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: install install-dev models run test lint bench bench-redis bench-amqp bench-aimd bench-fairness bench-eta soak browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(DEV_STAMP): $(STAMP) $(MODELS_STAMP) requirements-dev.lock
	$(BIN)/pip install -q -r requirements-dev.lock
	touch $@

# EfficientNet-Lite0 exported once to ONNX inside the venv (feature.extract, /v1/collections);
# torch is needed for the export only, so it lives in requirements-models.lock.
$(MODELS_STAMP): $(STAMP) requirements-models.lock genqueue/ml/export_effnet.py
	$(BIN)/pip install -q -r requirements-models.lock
	$(BIN)/python -m genqueue.ml.export_effnet
	touch $@

models: $(MODELS_STAMP)

install: $(STAMP) $(MODELS_STAMP)

install-dev: $(DEV_STAMP)

run: install
	$(BIN)/genqueue up --host $(HOST) --port $(PORT) --workers $(WORKERS)

# Debian's Chromium for the console tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: $(DEV_STAMP)
	$(BIN)/ruff check genqueue tests bench examples
	$(BIN)/ruff format --check genqueue tests bench examples
	$(BIN)/mypy genqueue tests bench examples

# The suite in parallel (most tests wait on processes and servers, not on the CPU), then the
# few that stop the shared RabbitMQ or time restarts, alone (conftest.py EXCLUSIVE_FILES).
TEST_PROCESSES ?= 3
test: $(DEV_STAMP) browser lint
	$(BIN)/pytest -m "not slow and not exclusive" -n $(TEST_PROCESSES) --dist worksteal
	$(BIN)/pytest -m "not slow and exclusive"

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.throughput

# genqueue on Redis beside a raw redis-py loop and Celery, Dramatiq, arq and RQ, which live in
# their own virtualenv so they never touch genqueue's dependencies.
.venv-bench/.installed: bench/peers.lock
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q -r bench/peers.lock
	touch $@

bench-redis: $(DEV_STAMP) .venv-bench/.installed
	$(BIN)/python -m bench.redis_peers

# genqueue on RabbitMQ + PostgreSQL and PostgreSQL alone beside a raw aio-pika loop, Celery and
# Dramatiq on the same RabbitMQ (vhost gqbench, made and deleted by the bench).
bench-amqp: $(DEV_STAMP) .venv-bench/.installed
	$(BIN)/python -m bench.amqp_peers

# AIMD against the VOD stand-in's concurrency cap, beside fixed limits (goodput, limit errors,
# time to settle after the cap moves 8 -> 4 -> 10).
bench-aimd: $(DEV_STAMP)
	$(BIN)/python -m bench.aimd

# Fair share: a user's 20 tasks behind another's 5 000, beside FIFO and an idle cluster.
bench-fairness: $(DEV_STAMP)
	$(BIN)/python -m bench.fairness

# ETA accuracy: predicted against actual start under a steady mixed load.
bench-eta: $(DEV_STAMP)
	$(BIN)/python -m bench.eta

# Every store/broker pairing under load while workers, the API and private Redis/PostgreSQL
# servers are killed at random (RabbitMQ: the shared one, stopped once per pairing); fails if
# an accepted task is lost or recorded twice. SOAK_MINUTES of load in all, plus the drains.
SOAK_MINUTES ?= 10
soak: $(DEV_STAMP)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .venv-bench data .pytest_cache .mypy_cache .ruff_cache
