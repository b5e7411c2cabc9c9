# One set-up path for hicd_mm: an ordered install into a virtual environment.
#   make demo   - set up (once) and run the main job on the embedded synthetic dataset
#   make test   - set up (once) and run the test suite
#   make test-fast - the fast lane: every test not marked slow (development)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.hicd_mm_installed

.PHONY: install demo test test-fast clean-venv

install: $(STAMP)

$(STAMP): requirements.txt requirements-tests.txt
	$(PYTHON) -m venv $(VENV)
	# 1. torch and the build tools mmcv's setup.py imports (no build isolation below).
	$(PIP) install torch==2.13.0 "setuptools>=77.0.3,<81" wheel ninja numpy==2.4.6
	# 2. full mmcv with CPU ops, compiled against the installed torch (~9-13 min once; pip caches the wheel).
	MMCV_WITH_OPS=1 MAX_JOBS=2 $(PIP) install --no-build-isolation mmcv==2.1.0
	# 3. everything else, then hicd_mm itself in editable mode.
	$(PIP) install -r requirements.txt -r requirements-tests.txt
	$(PIP) install --no-build-isolation --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest tests

test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow"

clean-venv:
	rm -rf $(VENV)
