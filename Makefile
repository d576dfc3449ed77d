# `make test`: set up .venv, check style (`make lint`), run the test suite.
# `make lint`: flake8 and isort (settings in setup.cfg) over the Python sources.
# `make demo`: set up .venv, install the Fashion-MNIST Debian package, run the demo.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.mmdyt-installed
TORCH := torch==2.12.1 torchvision==0.27.1
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
LINT_PATHS := mmdyt tools tests configs setup.py

.PHONY: test lint demo env

test: lint
	$(PY) -m pytest tests -q

lint: $(STAMP)
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)

demo: $(STAMP) $(FASHION_MNIST)
	$(PY) tools/demo.py

env: $(STAMP)

$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/deploy.txt requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH) -c requirements/constraints.txt
	$(PIP) install -r requirements/runtime.txt -r requirements/tests.txt -c requirements/constraints.txt
	$(PIP) install -e . --no-deps
	touch $@

$(FASHION_MNIST):
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y dataset-fashion-mnist
