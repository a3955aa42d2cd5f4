# Fresh-machine entry points. uv is installed with pip if missing; everything else comes from uv.lock.
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: install demo test test-quick check bench bench-serving

install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen

demo: install
	$(UV) run --frozen sharehub demo

test: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen mypy
	$(UV) run --frozen pytest

test-quick: install
	$(UV) run --frozen pytest -m "not slow"

bench: install
	$(UV) run --frozen python -m bench.extract
	$(UV) run --frozen python -m bench.quality
	$(UV) run --frozen python -m bench.consistency
	$(UV) run --frozen python -m bench.bulk

bench-serving: install
	$(UV) run --frozen python -m bench.serving
