# `make demo` runs the demo corpus job, `make test` runs the tests. Both create the
# virtual environment (.venv) on first use and reuse it afterwards; it is rebuilt
# only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# test processes: each test module runs whole in one of them (its fixtures are made once)
TEST_WORKERS ?= 2

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

# The t2v demo, then its multi-ID (ID crops) and editing (reference video + mask) variants,
# all on the bundled real clips with offline backends; each output is verified.
DEMOS := demo demo_mi2v demo_edit

demo: $(STAMP)
	$(VENV)/bin/datakit samples data/samples
	@set -e; for d in $(DEMOS); do \
	  $(VENV)/bin/datakit run pipelines/$$d.yaml; \
	  $(VENV)/bin/datakit verify -q out/$$d; \
	done
	$(VENV)/bin/datakit stats out/demo
	$(VENV)/bin/datakit inspect out/demo --html out/demo-report -q
	@echo "report: out/demo-report/index.html"

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --max-worker-restart 1

clean:
	rm -rf out data/samples
