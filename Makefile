# safetyscope — two commands on a fresh machine:
#   make demo   build everything, generate the sample, run the batch heat map, serve the dashboard
#   make test   build everything and run every test (Rust, Python, WASM, browser)
SHELL := /bin/bash
.DEFAULT_GOAL := help

# One cargo target dir outside the clone, shared by every build and kept
# between runs on the same machine.
export CARGO_TARGET_DIR ?= /var/tmp/safetyscope-target
export CARGO_TERM_COLOR ?= never
PROFILE ?= ci
# The WASM module's profile: `make site WASM_PROFILE=wasm-release` builds the
# size-optimised module the published dashboard ships (BENCHMARKS.md).
WASM_PROFILE ?= $(PROFILE)
VENV ?= /var/tmp/safetyscope-venv
PY := $(VENV)/bin/python
BUILD := build
PORT ?= 8765
BIN := $(CARGO_TARGET_DIR)/$(PROFILE)/safetyscope
CLUSTER_BIN := $(CARGO_TARGET_DIR)/$(PROFILE)/safetyscope-cluster
STAGE := scripts/stage.sh

.PHONY: help bench fuzz setup build-cli build-cluster cluster-up cluster-down test-cluster build-wasm build-python sample batch site demo serve test \
        test-lint test-rust test-python test-notebooks test-s3 test-wasm test-surfaces test-browser python-methods clean

# Seeded mutation fuzzing of every parser (crates/safetyscope-core/tests/fuzz.rs):
# FUZZ_SECONDS per target (default one hour). `make test` runs a few hundred
# inputs per target.
FUZZ_SECONDS ?= 3600
fuzz: setup
	@SAFETYSCOPE_FUZZ_SECONDS=$(FUZZ_SECONDS) $(STAGE) fuzz cargo nextest run --cargo-profile $(PROFILE) -p safetyscope-core --test fuzz --no-capture --test-threads 1

help:
	@echo "make demo   - build, generate the sample, run the batch heat map, serve the dashboard"
	@echo "make test   - build and run every test"
	@echo "make fuzz   - mutation fuzzing of every parser, FUZZ_SECONDS per target (default 3600)"
	@echo "make bench  - criterion benchmarks of the statistics (bench profile; see BENCHMARKS.md for the side-by-side scripts)"

# Criterion benchmarks of the hand-written statistics (not part of `make test`:
# timings are measured, never asserted).
bench: setup
	@$(STAGE) bench cargo bench --profile bench -p safetyscope-bench

setup:
	@if [ -z "$(SETUP_DONE)" ]; then $(STAGE) setup scripts/setup.sh "$(VENV)"; fi

build-cli: setup
	@$(STAGE) build-cli cargo build --profile $(PROFILE) -p safetyscope-cli

# The Ballista scheduler, executor and job runner (a separate binary: the
# distributed engine's dependencies stay out of the CLI and the wheel).
build-cluster: setup
	@$(STAGE) build-cluster cargo build --profile $(PROFILE) -p safetyscope-cluster

# A scheduler and two executors on 127.0.0.1 (logs in build/cluster); then
#   $(CLUSTER_BIN) run build/nightly.toml --cluster df://127.0.0.1:50050
#   or: $(BIN) run build/nightly.toml --cluster df://127.0.0.1:50050
cluster-up: build-cluster build-cli
	@scripts/cluster.sh up $(CLUSTER_BIN) $(BUILD)/cluster

cluster-down:
	@scripts/cluster.sh down $(CLUSTER_BIN) $(BUILD)/cluster

build-wasm: setup
	@$(STAGE) build-wasm scripts/build-wasm.sh $(WASM_PROFILE) $(BUILD)/pkg

build-python: setup
	@$(STAGE) build-python scripts/build-python.sh $(PROFILE) "$(VENV)" $(BUILD)/wheels

sample: build-cli
	@$(STAGE) sample $(BIN) generate --out $(BUILD)/sample --scale 1 --seed 42

batch: sample
	@$(STAGE) batch-risk $(BIN) risk $(BUILD)/sample --out $(BUILD)/out/risk.parquet --svg $(BUILD)/out/risk-U01.svg --site U01
	@$(BIN) risk $(BUILD)/sample --by zone --out $(BUILD)/out/risk-zones.csv
	@$(STAGE) batch-hotspots $(BIN) hotspots $(BUILD)/sample --out $(BUILD)/out/hotspots.parquet --svg $(BUILD)/out/hotspots-U01.svg --site U01
	@$(STAGE) batch-heatmap $(BIN) heatmap $(BUILD)/sample --out $(BUILD)/out/heatmap.parquet --svg $(BUILD)/out/heatmap-U01.svg --site U01
	@$(BIN) heatmap $(BUILD)/sample --out $(BUILD)/out/heatmap.json
	@$(BIN) heatmap $(BUILD)/sample --out $(BUILD)/out/heatmap.csv
	@$(STAGE) batch-patterns $(BIN) peaks $(BUILD)/sample --by site --out $(BUILD)/out/peaks.parquet
	@$(BIN) patterns $(BUILD)/sample --site U01 --out $(BUILD)/out/profile-U01.parquet --svg $(BUILD)/out/profile-U01.svg
	@$(BIN) trends $(BUILD)/sample --out $(BUILD)/out/trends.parquet --svg $(BUILD)/out/trends.svg
	@$(STAGE) batch-kpis $(BIN) kpis $(BUILD)/sample --scopes group,site,zone --out $(BUILD)/out/kpis.parquet
	@$(STAGE) batch-targets $(BIN) targets $(BUILD)/sample --out $(BUILD)/out/targets.csv --svg $(BUILD)/out/targets.svg
	@$(STAGE) batch-alerts $(BIN) alerts $(BUILD)/sample --out $(BUILD)/out/alerts.csv
	@$(STAGE) batch-review $(BIN) report $(BUILD)/sample --period 2025 --out $(BUILD)/out/review-2025.html
	@cp examples/jobs/nightly.toml $(BUILD)/nightly.toml
	@$(STAGE) batch-job $(BIN) run $(BUILD)/nightly.toml

site: batch build-wasm
	@$(STAGE) site $(BIN) dashboard --data $(BUILD)/sample --out $(BUILD)/site --pkg $(BUILD)/pkg

demo: site build-python
	@echo
	@echo "Batch results:  $(BUILD)/out/risk.parquet (risk-U01.svg, risk-zones.csv), hotspots.parquet (hotspots-U01.svg), heatmap.parquet (.csv, .json),"
	@echo "                peaks.parquet, profile-U01.svg, trends.svg, kpis.parquet, targets.csv (targets.svg), alerts.csv, review-2025.html"
	@echo "Nightly job:    $(BUILD)/job/ ($(BUILD)/nightly.toml, a copy of examples/jobs/nightly.toml; run-summary.json)"
	@echo "Review:         $(BUILD)/out/review-2025.html (the review-meeting report; print it to A4)"
	@echo "Single file:    $(BIN) dashboard --data $(BUILD)/sample --single-file $(BUILD)/report.html --pkg $(BUILD)/pkg"
	@echo "Python:         $(PY) -c 'import safetyscope; print(safetyscope.Dataset.open(\"$(BUILD)/sample\").risk_map(site=\"U01\").to_pandas())'"
	@echo "Dashboard:      http://127.0.0.1:$(PORT)/   (Ctrl-C to stop)"
	@$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory $(BUILD)/site

test-lint: setup
	@$(STAGE) fmt cargo fmt --all --check
	@$(STAGE) layers python3 scripts/check-layers.py crates/safetyscope-core/src
	@$(STAGE) clippy cargo clippy --profile $(PROFILE) --workspace --all-targets -- -D warnings
	@$(STAGE) rustdoc env RUSTDOCFLAGS="-D warnings" cargo doc --profile $(PROFILE) --no-deps -p safetyscope-core -p safetyscope-render

test-rust: build-cli
	@$(STAGE) test-rust cargo nextest run --cargo-profile $(PROFILE) --no-fail-fast
	@$(STAGE) test-rust-doc cargo test --profile $(PROFILE) --doc -p safetyscope-core

test-python: build-python
	@$(STAGE) test-python scripts/test-python.sh "$(VENV)"

test-notebooks: build-python
	@$(STAGE) test-notebooks scripts/test-notebooks.sh "$(VENV)"

# Every analysis of the registry through the CLI, Python, WASM (node) and a
# job: equal results, and every surface lists the registry's options.
test-surfaces: build-cli build-python build-wasm sample
	@$(STAGE) test-surfaces $(PY) -m pytest -q tests/surfaces --bin $(BIN) --pkg $(BUILD)/pkg --sample $(BUILD)/sample

# The Python methods of the analyses, written from the registry.
python-methods: build-cli
	@$(BIN) options | python3 scripts/gen-python-methods.py -

test-wasm: build-wasm
	@$(STAGE) test-wasm scripts/test-wasm.sh $(PROFILE)

# Datasets on an S3-compatible store (a local moto server): CLI, jobs, Python.
test-s3: build-cli build-python
	@$(STAGE) test-s3 $(PY) -m pytest -q tests/s3 --bin $(BIN)

test-cluster: build-cluster build-cli
	@$(STAGE) test-cluster $(PY) -m pytest -q tests/cluster --bin $(BIN) --cluster-bin $(CLUSTER_BIN)

test-browser: site
	@$(STAGE) test-browser $(PY) -m pytest -q tests/e2e --bin $(BIN) --site $(BUILD)/site --sample $(BUILD)/sample

test:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory setup && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-lint && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-rust && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-python && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-notebooks && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-s3 && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-wasm && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-surfaces && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-browser && \
	$(MAKE) --no-print-directory SETUP_DONE=1 test-cluster; \
	rc=$$?; echo "== make test: $$(( $$(date +%s) - start ))s total, exit $$rc"; exit $$rc

clean:
	rm -rf $(BUILD)
