# The two commands a new machine needs: `make run` and `make test`.
# DNC_* variables from the caller's environment pass straight through.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint browser bench locust clean

$(BIN)/dnc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/dnc
	exec $(BIN)/dnc serve

lint: $(BIN)/dnc
	$(BIN)/ruff check registry loader tests benchmarks
	$(BIN)/ruff format --check registry loader tests benchmarks
	$(BIN)/mypy

# Headless Chromium and its driver for tests/test_pages.py, from Debian, when missing.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }

# One pytest worker a CPU, at most four: each worker starts its own Redis and Cluster.
test: lint browser
	$(BIN)/pytest -q -n logical --maxprocesses=4

bench: $(BIN)/dnc
	$(BIN)/python -m benchmarks.run

# Load test of a running `make run` (same DNC_ADMIN_KEY); stops by itself, CSV stats in
# benchmarks/out/locust_*.csv. Override: make locust LOCUST_USERS=50 LOCUST_RUN_TIME=5m
# Stats are written beside their place and moved there after the run, unless it never
# started (exit 3: registry unreachable, wrong key), so that leaves the last run's stats.
# The shell outlives a Ctrl+C (trap) to move the stats locust wrote as it stopped.
LOCUST_USERS      ?= 20
LOCUST_SPAWN_RATE ?= 10
LOCUST_RUN_TIME   ?= 60s
LOCUST_HOST       ?= http://$(or $(DNC_HOST),127.0.0.1):$(or $(DNC_PORT),8000)
LOCUST_CSV        ?= benchmarks/out/locust

locust: $(BIN)/dnc
	mkdir -p $(dir $(LOCUST_CSV))
	trap : INT TERM; \
	$(BIN)/locust -f benchmarks/locustfile.py --headless --only-summary \
		--host $(LOCUST_HOST) --users $(LOCUST_USERS) --spawn-rate $(LOCUST_SPAWN_RATE) \
		--run-time $(LOCUST_RUN_TIME) --csv $(LOCUST_CSV).running; \
	status=$$?; \
	for f in $(LOCUST_CSV).running_*.csv; do \
		[ -e "$$f" ] || continue; \
		if [ $$status -eq 3 ]; then rm -f "$$f"; \
		else mv -f "$$f" "$(LOCUST_CSV)$${f#$(LOCUST_CSV).running}"; fi; \
	done; \
	exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
