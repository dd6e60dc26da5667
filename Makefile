# ipfm: two commands on a fresh Debian 12 (Rust toolchain, Python 3, Node 20 preinstalled):
#   make run    install what is missing, build, create the station repo, show its identity
#   make test   install what is missing, then fmt + clippy + every test (interop included)
# Every install step is idempotent and skipped when already done (stamp files record what was
# installed from which lock file), so a second `make deps` installs nothing.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Targets run in the order written (deps before checks); cargo parallelises on its own.
.NOTPARALLEL:

PYTHON ?= python3
VENV := .venv
INTEROP := tests/interop
VENV_STAMP := $(VENV)/.installed-requirements
NPM_STAMP := $(INTEROP)/node_modules/.installed-lock
BROWSER := tests/browser
BROWSER_STAMP := $(BROWSER)/node_modules/.installed-lock
IPFM_REPO ?= $(HOME)/.ipfm
# CI=true (set by the CI runner) selects nextest's `ci` profile: no fail-fast, full output.
NEXTEST_PROFILE := $(if $(filter true 1,$(CI)),ci,default)

.PHONY: help deps deps-apt deps-rust deps-python deps-npm deps-browser build release run test fmt-check \
	clippy nextest lint-dockerfile bench deps-bench

help:
	@echo "make run      install deps, build ipfm (release), init the repo ($(IPFM_REPO)), start the demo station"
	@echo "make test     install deps, cargo fmt --check, clippy -D warnings, nextest (loopback-only netns), hadolint"
	@echo "make deps     install missing apt packages, the Python venv ($(VENV)) and npm test deps"
	@echo "make build    debug build of the workspace"
	@echo "make release  release build of ipfm (target/release/ipfm)"
	@echo "make bench    benchmarks (ratios against references), written to docs/benchmarks.md"

# ---------------------------------------------------------------- dependencies
deps: deps-apt deps-rust deps-python deps-npm deps-browser

deps-apt:
	@scripts/install-apt-deps.sh

# Only for `make bench`: the reference web server and the HTTP load generator (Debian 12's
# nginx and wrk). On a host with an init system, installing nginx also starts its default
# site on port 80; the benchmark runs its own unprivileged instance and needs none of that.
deps-bench:
	@scripts/install-apt-deps.sh nginx wrk

# rustfmt and clippy come with the toolchain; cargo-nextest is installed from crates.io if missing.
deps-rust:
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
	@cargo nextest --version >/dev/null 2>&1 || cargo install --locked cargo-nextest

deps-python: $(VENV_STAMP)

$(VENV_STAMP): $(INTEROP)/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(INTEROP)/requirements.txt
	@touch $@

deps-npm: $(NPM_STAMP)

# `npm ci` installs exactly package-lock.json (and wipes node_modules first, stamp included).
$(NPM_STAMP): $(INTEROP)/package.json $(INTEROP)/package-lock.json
	cd $(INTEROP) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Headless browser tests (the player page): Debian's chromium, driven by npm playwright-core,
# which downloads no browser of its own.
deps-browser: $(BROWSER_STAMP)
	@scripts/install-browser.sh

$(BROWSER_STAMP): $(BROWSER)/package.json $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# ---------------------------------------------------------------- build and run
build:
	cargo build --workspace

release:
	cargo build --release -p ipfm-node --bin ipfm

run: deps-apt release
	@scripts/show-identity.sh target/release/ipfm "$(IPFM_REPO)"
	target/release/ipfm station --repo "$(IPFM_REPO)"

# ---------------------------------------------------------------- checks
test: deps fmt-check clippy nextest lint-dockerfile

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# Build outside the namespace (cargo may need the registry), run inside it (loopback only).
nextest:
	cargo nextest run --workspace --no-run --profile $(NEXTEST_PROFILE)
	scripts/in-loopback-netns.sh cargo nextest run --workspace --offline --profile $(NEXTEST_PROFILE)

lint-dockerfile: deps-python
	@scripts/lint-dockerfile.sh

# Each benchmark measures ratios against a reference run side by side and rewrites its own
# section of docs/benchmarks.md.
bench: release deps-python deps-bench
	$(VENV)/bin/python bench/add.py target/release/ipfm 256 --write docs/benchmarks.md
	cargo build --release -p ipfm-encoder --example encode_bench
	$(VENV)/bin/python bench/encoder.py target/release/examples/encode_bench 60 --write docs/benchmarks.md
	cargo build --release -p ipfm-node --example net_bench
	scripts/in-loopback-netns.sh $(VENV)/bin/python bench/net.py target/release/examples/net_bench 100 --write docs/benchmarks.md
	scripts/in-loopback-netns.sh $(VENV)/bin/python bench/station.py target/release/ipfm 60 --write docs/benchmarks.md
	scripts/in-loopback-netns.sh $(VENV)/bin/python bench/rss.py 120 target/release/ipfm --write docs/benchmarks.md
	scripts/in-loopback-netns.sh $(VENV)/bin/python bench/fanout.py target/release/ipfm 60 --write docs/benchmarks.md
