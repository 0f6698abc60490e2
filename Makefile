# `make demo` runs the demo corpus job, `make test` runs the tests. Both create the
# virtual environment (.venv) on first use and reuse it afterwards; it is rebuilt
# only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export RAY_AUTH_MODE ?= disabled
export NO_ALBUMENTATIONS_UPDATE := 1
export HF_HUB_OFFLINE := 1

.PHONY: venv demo test clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e ".[models,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/datakit samples data/samples
	$(VENV)/bin/datakit run pipelines/demo.yaml
	$(VENV)/bin/datakit verify out/demo
	$(VENV)/bin/datakit stats out/demo

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf out data/samples
