# Every install step lives here: CI runs `make test` on a clean clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STUBS_DIR := service/proxyvote/v1
PROTOS := $(wildcard protos/proxyvote/v1/*.proto)
STUBS_STAMP := $(STUBS_DIR)/.stubs-stamp

export PROXYVOTE_ADDR ?= 127.0.0.1:50051

.PHONY: help install system-packages protos run test lint bench memo-example clean fuzz

help:
	@echo "make run     set up and serve on $(PROXYVOTE_ADDR) with the bundled policies"
	@echo "make test    set up and run every test (unit, policy, servicer, end-to-end, property)"
	@echo "make lint    ruff and buf lint"
	@echo "make bench   throughput ratios (docs/benchmarks.md)"
	@echo "make protos  regenerate the protobuf stubs"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian packages the memos need: pango for WeasyPrint (PDF), a font with glyphs,
# and for the memo tests and `make memo-example` headless Chromium and pdftoppm.
# Installed only when missing (dpkg -s; /usr/bin/chromium for Chromium); as root
# it runs apt-get, otherwise it prints the command and the tests that need them skip.
DEBIAN_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils
SYSTEM_STAMP := $(VENV)/.system-packages

$(SYSTEM_STAMP): Makefile
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then \
		mkdir -p $(VENV) && touch $@; \
	elif ! command -v apt-get >/dev/null; then \
		echo "missing system packages:$$missing (PDF memos and the memo tests need them; Debian names)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
			&& mkdir -p $(VENV) && touch $@; \
	else \
		echo "missing Debian packages:$$missing (PDF memos and the memo tests need them); as root run:"; \
		echo "  apt-get update && apt-get install -y$$missing"; \
	fi

system-packages: $(SYSTEM_STAMP)

$(STUBS_STAMP): $(VENV)/.installed $(PROTOS)
	rm -f $(STUBS_DIR)/*_pb2.py $(STUBS_DIR)/*_pb2.pyi $(STUBS_DIR)/*_pb2_grpc.py
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=service --pyi_out=service \
		--grpc_python_out=service $(PROTOS)
	touch $@

protos: $(STUBS_STAMP)

run: $(STUBS_STAMP)
	$(VENV)/bin/proxyvote db upgrade
	@echo "proxyvote serving on $(PROXYVOTE_ADDR). In another shell:"
	@echo "  export PROXYVOTE_API_KEY=\$$($(VENV)/bin/proxyvote tenant create me-\$$RANDOM | sed -n 's/^API key, shown once: //p')"
	@echo "  $(VENV)/bin/proxyvote recommend --server $(PROXYVOTE_ADDR) --policy human-rights-esg --meeting examples/meetings/amazon-2020-agm.json"
	$(VENV)/bin/proxyvote serve

test: $(STUBS_STAMP) $(SYSTEM_STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q
	$(VENV)/bin/proxyvote policy test

# Hostile input at volume (docs/fuzzing.md): 10,000 generated requests to a real
# server, on SQLite and on PostgreSQL; `make test` runs the same with 500.
fuzz: $(STUBS_STAMP)
	PROXYVOTE_FUZZ_EXAMPLES=10000 $(PY) -m pytest -q tests/test_fuzz.py

lint: $(STUBS_STAMP)
	$(VENV)/bin/ruff check service tests bench
	cd protos && ../$(VENV)/bin/buf lint

bench: $(STUBS_STAMP)
	$(PY) bench/run.py
	$(PY) bench/classification.py
	$(PY) bench/backtest.py
	$(PY) bench/serving.py
	$(PY) bench/plan.py

# A screenshot of an HTML page with headless Chromium: $(call screenshot,PAGE,PNG,WIDTH,HEIGHT).
screenshot = tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && timeout 120 /usr/bin/chromium --headless --no-sandbox \
	--disable-gpu --disable-background-networking --disable-component-update --disable-sync \
	--no-first-run --user-data-dir="$$tmp" --hide-scrollbars --window-size=$(3),$(4) \
	--screenshot=$(2) "file://$(CURDIR)/$(1)"

AMAZON_2020 := --meeting examples/meetings/amazon-2020-agm.json --evidence examples/evidence/amazon.json --as-of 2020-05-20

# The HTML memo of the Amazon 2020 AGM, and a screenshot of it (docs/memo-example.png);
# its perspectives memo under the three bundled policies (docs/perspectives-memo.png).
memo-example: $(STUBS_STAMP) $(SYSTEM_STAMP)
	mkdir -p build
	$(VENV)/bin/proxyvote memo --policy human-rights-esg $(AMAZON_2020) --format html --output build/memo-example.html
	$(call screenshot,build/memo-example.html,docs/memo-example.png,1200,1800)
	$(VENV)/bin/proxyvote memo --policy human-rights-esg --policy governance-baseline --policy board-aligned \
		--variant perspectives $(AMAZON_2020) --format html --output build/perspectives-memo.html
	$(call screenshot,build/perspectives-memo.html,docs/perspectives-memo.png,1300,2700)

clean:
	rm -rf $(VENV) $(STUBS_DIR)/*_pb2* $(STUBS_STAMP) .pytest_cache .hypothesis

# --- Classification (issue 8) ---------------------------------------------------
# The classifier's linear model, trained at build time from the N-PX
# development sets (scikit-learn, dev extras only; deterministic). The server
# scores it in plain Python. Git-ignored: every build makes its own.
NPX_DATA ?= ../shared/data/npx
MODEL := policies/taxonomy-model.json
NPX_SETS := $(wildcard $(NPX_DATA)/records-dev.jsonl $(NPX_DATA)/proposals-dev.jsonl $(NPX_DATA)/proposals-stance.jsonl)

ifeq ($(NPX_SETS),)
$(MODEL):
	@echo "no N-PX development sets in $(NPX_DATA): the classifier runs on its rules alone"
else
$(MODEL): $(VENV)/.installed $(NPX_SETS) service/proxyvote/core/textmodel.py service/proxyvote/cli/classify_train.py
	$(PY) -m proxyvote.cli.classify_train --data $(NPX_DATA) --out $@
endif

.PHONY: model eval
model: $(MODEL)
test run bench: $(MODEL)

# Held-out evaluation: 5 folds by issuer; each record is scored by a model
# fitted without its company's records (docs/classification.md).
eval: $(STUBS_STAMP) $(MODEL)
	$(VENV)/bin/proxyvote classify --eval $(NPX_DATA)/records-dev.jsonl $(NPX_DATA)/proposals-dev.jsonl \
		--stance $(NPX_DATA)/proposals-stance.jsonl --folds 5 --train-data $(NPX_DATA)
