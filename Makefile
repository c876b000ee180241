# The course's commands. `make course` runs the whole course; `make test` runs every test.
# Both create .venv and install the pinned environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
KERNEL := mnist-course

.PHONY: help setup kernel data course test test-helpers test-notebooks lab bench outputs lint clean

help:
	@echo "make course   set up, get MNIST, execute every chapter (full mode) into build/ with a timing table"
	@echo "make test     set up, get MNIST, run pytest over tests/ and nbval over notebooks/ (quick mode)"
	@echo "make lab      open JupyterLab on the notebooks"
	@echo "make bench    the speed benchmark (scripts/bench.py; add ARGS=--quick for a one-minute run)"
	@echo "make outputs  re-run notebooks in place to refresh their saved outputs (NB=ch02 for one)"

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt -e .
	@touch $@

setup: $(VENV)/.installed kernel

# Register the course's Jupyter kernel, so JupyterLab (any install of it) opens the notebooks in this environment.
kernel: $(VENV)/.installed
	@$(PY) -m ipykernel install --user --name $(KERNEL) --display-name "Python 3 ($(KERNEL))" >/dev/null
	@echo "Jupyter kernel '$(KERNEL)' -> $(PY)"

data: setup
	$(PY) -m helpers.data

course: data
	$(PY) scripts/run_notebooks.py --html

test: data
	$(PY) -m pytest tests
	COURSE_MODE=quick $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks

lab: setup
	$(BIN)/jupyter lab notebooks

bench: data
	$(PY) scripts/bench.py $(ARGS)

outputs: data
	$(PY) scripts/run_notebooks.py --inplace $(NB)

lint: setup
	$(BIN)/ruff check helpers tests scripts notebooks

clean:
	rm -rf build notebooks/runs notebooks/logs .pytest_cache
