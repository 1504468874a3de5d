# Fresh machine: `make demo` or `make test`. Each creates .venv the first time and installs the
# project into it (editable), again only when pyproject.toml changes:
#   make demo  the runtime dependencies only (pip install -e .), what the container installs;
#   make test  the runtime dependencies and the test and bench extras (pip install -e '.[test,bench]').
# After `make test`, `make demo` installs nothing: the full install covers the runtime one.

PYTHON ?= python3
VENV := .venv
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-test-bench

.PHONY: venv runtime demo test bench bench-goals bench-recall bench-disclosure bench-load bench-live

# The development environment: everything `make test` and the benchmarks need.
venv: $(DEV_STAMP)

# The runtime environment only: what `make demo` needs.
runtime: $(RUNTIME_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e .
	touch $(RUNTIME_STAMP)

# The full install includes the runtime one, so it renews that stamp too.
$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[test,bench]'
	touch $(RUNTIME_STAMP) $(DEV_STAMP)

demo: runtime
	$(VENV)/bin/tearline demo

# Lint, format check and strict typing first (seconds), then the suite on two workers (CI has 2
# cores); a test module stays on one worker, so its live servers start once.
test: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -n 2 --dist loadscope

# Peer benchmark (issue 7): Tearline on SQLite and PostgreSQL at N = 1k, 10k, 100k and 1M against the
# raw-SQL limit, the HTTP floor and medallion; writes bench/results/peers.{json,md,png}. 20 to 40
# minutes on 2 cores, by the machine; needs PostgreSQL at 127.0.0.1:5432 (or
# TEARLINE_TEST_PG_ADMIN_URL) and about 6 GB of disk. BENCH_ARGS adds options, e.g. make bench BENCH_ARGS="--sizes 1000,10000".
bench: venv
	$(VENV)/bin/python bench/peers.py $(BENCH_ARGS)
	$(VENV)/bin/python bench/goals.py

# Issue 22's goals in one run that fits 2 cores in about 20 minutes: the peer bench at N = 10k and 100k on both
# stores (without medallion and OpenTAXII; `make bench` adds 1M and the peers), the CLI start, the load and the
# live-stream benches, then bench/goals.py: every goal as a ratio with its verdict in bench/results/goals.md.
bench-goals: venv
	$(VENV)/bin/python bench/peers.py --sizes 10000,100000 --no-medallion --no-opentaxii $(BENCH_ARGS)
	$(VENV)/bin/python bench/cli_start.py
	$(VENV)/bin/python bench/load.py $(LOAD_ARGS)
	$(VENV)/bin/python bench/audit_ceiling.py
	$(VENV)/bin/python bench/live.py $(LIVE_ARGS)
	$(VENV)/bin/python bench/goals.py

# Recall benchmark (app/recall/): 1,000 partner principals of 30 nations pull an item, the analyst
# tightens it; the tightening POST against a POST that tightens nothing, and the time until every nation
# can GET its notice (goal: 1 s). SQLite and PostgreSQL, each with and without the recipients index up to
# date; about 2 minutes; writes bench/results/recall.json. RECALL_ARGS adds options, e.g. RECALL_ARGS="--repeats 3".
bench-recall: venv
	$(VENV)/bin/python bench/recall.py $(RECALL_ARGS)

# Disclosure benchmark (app/disclosure/): a queue of 10,000 held items on SQLite and PostgreSQL; opening
# the queue, one item's preview, a union preview and a release of 1,000, and the time until a partner's
# pull and live stream have them (goal: each well under a second); about a minute; writes
# bench/results/disclosure.json. DISCLOSURE_ARGS adds options, e.g. DISCLOSURE_ARGS="--repeats 3".
bench-disclosure: venv
	$(VENV)/bin/python bench/disclosure.py $(DISCLOSURE_ARGS)

# Load benchmark (issue 22): the suite's load test (20 partners pulling pages of 50, 2 analysts posting) against
# live `tearline serve` processes on SQLite and PostgreSQL, PostgreSQL with 1 and 2 instances on one database,
# then the audit log's records-per-second ceiling (32 clients on GET /taxii2/; every record counted, the chain
# verified); about 4 minutes on 2 cores at the default 30 s a phase; needs PostgreSQL at 127.0.0.1:5432 (or
# TEARLINE_TEST_PG_ADMIN_URL); writes bench/results/load.{json,md}. LOAD_ARGS adds options, e.g. LOAD_ARGS="--seconds 120".
bench-load: venv
	$(VENV)/bin/python bench/load.py $(LOAD_ARGS)

# Live-stream latency (app/live/, issue 22): S = 1 and 50 partner streams (half of them of nations that may
# not see the posts) while the home analyst POSTs 1 object (20 times) and 100 (5 times); from the commit
# to each allowed stream's event, p50/p95/max against the promise (p95 <= 1 s), the POST as baseline, and
# any event on a stream that may not see it is a failure (exit 1). SQLite and PostgreSQL, about 75 s
# on 2 cores; writes bench/results/live.{json,md}. LIVE_ARGS adds options, e.g. LIVE_ARGS="--streams 1,10".
bench-live: venv
	$(VENV)/bin/python bench/live.py $(LIVE_ARGS)
