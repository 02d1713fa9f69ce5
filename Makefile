# Every install step lives here: CI runs `make test` on a clean clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STUBS_DIR := service/proxyvote/v1
PROTOS := $(wildcard protos/proxyvote/v1/*.proto)
STUBS_STAMP := $(STUBS_DIR)/.stubs-stamp

export PROXYVOTE_ADDR ?= 127.0.0.1:50051

.PHONY: help install protos run test lint bench clean

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

test: $(STUBS_STAMP)
	$(PY) -m pytest -q
	$(VENV)/bin/proxyvote policy test

lint: $(STUBS_STAMP)
	$(VENV)/bin/ruff check service tests bench
	cd protos && ../$(VENV)/bin/buf lint

bench: $(STUBS_STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(STUBS_DIR)/*_pb2* $(STUBS_STAMP) .pytest_cache .hypothesis
