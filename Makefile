# The two commands: `make run` and `make test`. Both need nothing but Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install migrate demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

## The whole product on embedded defaults (SQLite + embedded Redis), or on DATABASE_URL / REDIS_URL.
run: $(STAMP)
	$(BIN)/python manage.py serve

## The whole suite. Set DATABASE_URL / REDIS_URL to test against PostgreSQL and Redis.
test: $(STAMP)
	@# The browser tests need a chromium: Debian's (CI installs it), or Playwright's own.
	@if [ -z "$$CHROMIUM_PATH" ] && [ ! -x /usr/bin/chromium ]; then \
		$(BIN)/python -m playwright install chromium || echo "Could not install Playwright's chromium; the browser tests will say how to get one."; \
	fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate

demo: $(STAMP)
	$(BIN)/python manage.py load_demo

clean:
	rm -rf $(VENV) var staticfiles

.PHONY: fault-injection
## The fault-injection drill at full size: every provider 503 for 2 minutes then timing out for 2, workers
## killed mid-burst, Redis restarted, database connections cut; prints its figures (bench/outage.py).
fault-injection: $(STAMP)
	$(BIN)/python bench/outage.py --scale full
