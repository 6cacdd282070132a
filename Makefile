# Every target sets up what it needs: a fresh clone on a fresh machine works.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: bootstrap test test-fast test-compose lint drill wheel-drill bench clean

bootstrap:
	@scripts/bootstrap.sh

## The whole suite. Tests start (and stop) their own PostgreSQL, Redis, fault proxy and
## payment services on 127.0.0.1; nothing needs to be running beforehand.
test: bootstrap
	$(PY) -m pytest -p no:cacheprovider -q

## The containerised stack on a private Docker engine (root; ~4-5 min warm, ~7 cold): see
## compose/NOTES.md. Installs docker.io, starts dockerd under a temp folder, builds the
## images without a registry, runs the container drills, removes everything.
test-compose: bootstrap
	compose/ci/test-compose.sh

test-fast: bootstrap
	$(PY) -m pytest -q -m "not slow and not stack"

lint: bootstrap
	$(PY) -m ruff check resilience faultline payments tests benchmarks
	$(PY) -m mypy resilience
	$(PY) -m mypy faultline payments

## A real drill on the embedded local stack (about two minutes).
drill: bootstrap
	$(VENV)/bin/faultline run scenarios/default/*.yaml

## A drill from the built wheel, installed in a fresh venv, run in an empty folder.
wheel-drill: bootstrap
	scripts/wheel-drill.sh

bench: bootstrap
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/proxy.py
	$(PY) benchmarks/stack.py
	$(PY) benchmarks/checkers.py
	$(PY) benchmarks/drill.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
