# lepton: developer entry points. `make help` lists them.
# Everything a fresh machine needs (the evcxr Jupyter kernel, the Python venv, the
# kernelspec, the warm evcxr cache) is installed by `make setup`, which `make lab`
# and `make test` run first. Prerequisites: rustup (it installs the Rust version pinned in
# rust-toolchain.toml), Python 3.11, GNU make.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT          := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CARGO_BIN     := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH   := $(CARGO_BIN):$(PATH)
EVCXR_VERSION := 0.22.0
PYTHON        ?= python3
export PYTHON
VENV          := $(ROOT)/.venv
VPY           := $(VENV)/bin/python
KERNEL_DIR    := $(VENV)/share/jupyter/kernels/lepton-rust
TIMED         := $(ROOT)/scripts/timed.sh

.PHONY: help setup toolchain evcxr venv kernel warm lab test test-rust test-python test-notebooks bench clean-kernel

help: ## Show this help
	@echo "lepton - make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'
	@echo "Variables: NO_BROWSER=1 (make lab), PYTHON=python3.11 (venv interpreter)"

setup: warm ## Install everything: evcxr kernel, .venv, kernelspec, warm evcxr cache
	@echo "setup complete"

toolchain: ## Install the Rust toolchain pinned in rust-toolchain.toml unless present (~15 s once)
	@$(TIMED) "setup: Rust toolchain (rust-toolchain.toml)" scripts/ensure_toolchain.sh

evcxr: toolchain ## Install evcxr_jupyter 0.22.0 with cargo unless present (~7-8 min once on an idle 2-core machine)
	@$(TIMED) "setup: evcxr_jupyter $(EVCXR_VERSION)" scripts/install_evcxr.sh $(EVCXR_VERSION)

venv: ## Create .venv from environment.yml's pip list (redone only when it changes)
	@$(TIMED) "setup: Python venv (.venv)" scripts/setup_venv.sh

kernel: evcxr venv ## Register the 'lepton-rust' kernelspec inside .venv, config in .evcxr/
	@$(TIMED) "setup: kernelspec lepton-rust" $(VPY) scripts/register_kernel.py

warm: kernel ## Compile lepton + deps into the evcxr cache (~10 min the first time, then seconds)
	@$(TIMED) "setup: warm evcxr cache" $(VPY) scripts/warm_kernel.py $(if $(filter 1 true yes,$(FORCE)),--force,)

lab: setup ## Start JupyterLab on notebooks/ (127.0.0.1, token auth); NO_BROWSER=1 to not open a browser
	cd notebooks && exec $(VENV)/bin/jupyter lab --ServerApp.root_dir="$(ROOT)/notebooks" \
	  --ServerApp.ip=127.0.0.1 --MappingKernelManager.default_kernel_name=lepton-rust $(if $(filter 1 true yes,$(NO_BROWSER)),--no-browser,) \
	  $$( [[ $$(id -u) == 0 ]] && echo --allow-root )

test: ## Everything: setup, cargo test (kernel-shaped build), pytest, all notebooks; ends "N passed, N failed"
	@scripts/run_tests.sh

test-rust: ## cargo test only (unit, integration, doc tests)
	cargo test

test-python: venv ## pytest tests/python only
	$(VPY) -m pytest tests/python -ra -p no:cacheprovider

test-notebooks: setup ## Execute notebooks/*.ipynb headless only (LEPTON_QUICK=1)
	LEPTON_QUICK=$${LEPTON_QUICK:-1} $(VPY) scripts/run_notebooks.py

bench: ## cargo bench -p lepton-benches (criterion; benches/ is its own package)
	cargo bench -p lepton-benches

clean-kernel: ## Remove .evcxr (config, build cache, build slots) and the venv kernelspec
	rm -rf "$(ROOT)/.evcxr" "$(KERNEL_DIR)"
