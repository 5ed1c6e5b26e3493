# Two targets do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= dev,postgres,redis,torch,onnx,ray,explain,federated,recsys

.PHONY: demo test test-fast lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mloop demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

# Everything, as CI: the tests on both cores (pytest-xdist; the demo's tests share one worker), then the
# serial ones (stall counts, failover under load) alone, then the Ray cluster's in a session of their own
# (a Ray driver exits when the cluster marks its node dead: under another test's load that ended a run). A
# driver that Ray aborts prints nothing: the Ray logs left behind say why.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not serial" --durations=30
	$(BIN)/python -m pytest -q -m "serial and not ray"
	$(BIN)/python -m pytest -q -m ray || { $(BIN)/python -m tests.ray_cluster; exit 1; }

# The quick loop: no real servers (PostgreSQL, Redis, S3) and no test marked slow, on every core (xdist);
# CI runs `make test`.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow and not postgres and not redis and not s3 and not ray"

# mloop-demo/ (the demo's default folder) goes only if the demo made it: its marker file is there.
clean:
	rm -rf $(VENV) .mloop .mloop-demo .pytest_cache .ruff_cache
	test ! -e mloop-demo/.mloop-demo || rm -rf mloop-demo
