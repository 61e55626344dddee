# The course in one command each:
#   make lab    create/update the environment and start JupyterLab on the course
#   make test   create/update the environment and run the whole test suite
# Other targets: bench, release, lint, lock, clean (see `make help`).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2
PORT   ?= 8888

# Every recipe sees the environment's tools first (jupyter, nbgrader, the python3 kernel).
export PATH := $(BIN):$(PATH)

.PHONY: help env lab test lint bench release lock clean gpu-check

help:
	@sed -n 's/^#   //p' Makefile | head -n 3
	@echo "  make bench     run the benchmark suite -> benchmarks/results.json"
	@echo "  make gpu-check on a CUDA machine: notebooks, GPU tests and rows -> benchmarks/results-gpu.json"
	@echo "  make release   regenerate notebooks/ from solutions/ with nbgrader"
	@echo "  make lint      ruff"
	@echo "  make lock      re-pin requirements.lock from the current environment"

env: $(STAMP)

# Rebuilt only when the pins or the package metadata change: fast when already there.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), \
		"Python 3.11 is required, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 \
		--display-name "Python 3 (accel course)" >/dev/null
	$(BIN)/python -m tools.lab --install-settings
	touch $@

# tools/lab.py: installs the course's JupyterLab settings (tools/lab_overrides.json) and runs
# `jupyter lab` on notebooks/ (--allow-root as root); the browser test starts it the same way.
lab: $(STAMP)
	$(BIN)/python -m tools.lab --port=$(PORT) $(LAB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Two test workers on two cores: each process (and each notebook kernel it starts) uses one
# thread, or their OpenMP pools oversubscribe the cores and every notebook runs ~10x slower.
# Where npm is, the JupyterHub test's proxy is installed first (hub-deps, below).
HUB_PROXY := hub/node_modules/.bin/configurable-http-proxy
test: $(STAMP) lint $(if $(shell command -v npm),$(HUB_PROXY))
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadscope -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# tools/gpu_check.py: every solution notebook, the @pytest.mark.gpu tests and the GPU
# benchmark rows in < 8 minutes; without CUDA it says so and exits 0.
gpu-check: $(STAMP)
	$(BIN)/python -m tools.gpu_check

release: $(STAMP)
	$(BIN)/python -m tools.course release

lock: $(STAMP)
	{ echo "# Exact versions that \`make\` installs (Python 3.11, x86_64). Regenerate with \`make lock\`."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable | grep -v -E '^(pip|accel.lib)=='; } > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache gradebook.db submitted autograded feedback .exchange \
		downloaded grades.csv $(STUDENT_DIST) hub/node_modules

# Instructors: the students' copy of the course, without solutions (docs/instructors.md).
STUDENT_DIST ?= dist/student
.PHONY: student-dist
student-dist:
	$(PYTHON) -m tools.dist build --force $(STUDENT_DIST)

# Instructors: autograde ASSIGNMENT's submissions in JOBS worker processes; the gradebook ends
# as `nbgrader autograde ASSIGNMENT` leaves it (tools/autograde.py, docs/instructors.md). Run
# in the activated course environment, like nbgrader.
ASSIGNMENT ?=
.PHONY: autograde
autograde:
	@test -n "$(ASSIGNMENT)" || { echo "usage: make autograde ASSIGNMENT=03_quantization JOBS=8"; exit 2; }
	python -m tools.autograde $(ASSIGNMENT) --jobs $(JOBS) $(if $(AUTOGRADE_ARGS),-- $(AUTOGRADE_ARGS))

# JupyterHub's proxy, configurable-http-proxy, from the npm registry into hub/node_modules
# (pinned by hub/package-lock.json): hub/jupyterhub_config.py and tests/test_hub.py use it.
.PHONY: hub-deps
hub-deps: $(HUB_PROXY)
$(HUB_PROXY): hub/package.json hub/package-lock.json
	cd hub && npm ci --no-audit --no-fund --loglevel=error
	touch $@
