# The course's commands. `make course` runs the whole course; `make test` runs every test.
# Both create .venv and install the pinned environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
KERNEL := mnist-course

# The AVX2-only path of most laptops, imitated on any x86-64 CPU: PyTorch's, oneDNN's and FBGEMM's kernels use
# AVX2 and nothing newer (no AVX-512, VNNI, bfloat16 or AMX). make test runs the tests and the notebooks whose
# results depend on those instructions a second time this way.
AVX2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2
CPU_NOTEBOOKS := notebooks/ch04_algorithms.ipynb notebooks/ch05_math.ipynb notebooks/ch07_finetune_compress.ipynb \
                 notebooks/ch11_lessons_outlook.ipynb
X86_64 := $(filter x86_64 amd64 AMD64,$(shell uname -m 2>/dev/null))
# The second run only differs from the first where the CPU has instructions beyond AVX2: Linux lists them in
# /proc/cpuinfo. An AVX2-only CPU (most laptops) skips it; elsewhere (macOS, no /proc) it runs.
BEYOND_AVX2 := $(if $(wildcard /proc/cpuinfo),$(shell grep -m1 -o -w -E "avx512f|amx_tile" /proc/cpuinfo),unknown)
NBVAL := COURSE_MODE=quick $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider

.PHONY: help setup kernel data course test lab bench bench-cpu outputs helpers zh timings lint clean

help:
	@echo "make course   set up, get MNIST, execute every chapter (full mode) into build/ with a timing table"
	@echo "make test     set up, get MNIST, run pytest over tests/ and nbval over notebooks/ (quick mode),"
	@echo "              then again on the AVX2 path (x86-64) for what depends on the CPU's instructions"
	@echo "make lab      open JupyterLab on the notebooks"
	@echo "make bench    the speed benchmark (scripts/bench.py; add ARGS=--quick for a one-minute run)"
	@echo "make bench-cpu  int8 and bfloat16 speed on this CPU's path and on the AVX2 path (scripts/bench_cpu.py)"
	@echo "make outputs  re-run notebooks in place to refresh their saved outputs (NB=ch02 for one)"
	@echo "make helpers  write helpers/saved/chNN.py from the notebooks' cells tagged 'save'"
	@echo "make zh       update i18n/zh/*.po from the English notebooks and write the Chinese edition notebooks/zh/"
	@echo "make timings  where each chapter's time goes, from the executed notebooks' cell timings"

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
	$(PY) -m helpers

course: data
	$(PY) scripts/run_notebooks.py --html

test: data
	$(PY) -m pytest tests --durations=15
	$(NBVAL) --durations=25 notebooks/*.ipynb
ifneq ($(and $(X86_64),$(BEYOND_AVX2)),)
	@echo "== again on the AVX2 path: $(AVX2)"
	$(AVX2) $(PY) -m pytest -q -p no:cacheprovider tests
	$(AVX2) $(NBVAL) $(CPU_NOTEBOOKS)
else
	@echo "== no second run on the AVX2 path: this CPU has no instructions beyond AVX2 (or is not x86-64)"
endif

lab: setup
	$(BIN)/jupyter lab notebooks

bench: data
	$(PY) scripts/bench.py $(ARGS)

bench-cpu: setup
	$(PY) scripts/bench_cpu.py $(ARGS)

outputs: data
	$(PY) scripts/run_notebooks.py --inplace $(NB)
	$(MAKE) zh

# The Chinese edition: the English notebooks' code and outputs with the translated prose of i18n/zh/*.po.
zh: setup
	$(PY) scripts/i18n.py extract
	$(PY) scripts/i18n.py build

helpers: setup
	$(PY) scripts/save_helpers.py

timings: setup
	$(PY) scripts/timings.py $(ARGS)

lint: setup
	$(BIN)/ruff check helpers tests scripts notebooks

clean:
	rm -rf build notebooks/runs notebooks/logs .pytest_cache
