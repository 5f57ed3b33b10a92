#!/usr/bin/env bash
# Lint generated Verilog with `verilator --lint-only -Wall`, one file at a time.
#
#   scripts/lint_verilog.sh build/verilog/*.v
#
# Every warning class below is waived because Amaranth's Verilog back end (Yosys write_verilog)
# produces it for correct designs; each waiver says why it is harmless. Any other warning fails the
# lint: fix the design, or add a waiver here with its reason.
set -euo pipefail

WAIVERS=(
    # Amaranth writes a block and all its submodules into one file, so the submodules ("mmu.tlb")
    # never match the file name.
    -Wno-DECLFILENAME
    # Registers are declared with their Amaranth init value ("reg x = 1'h0;") and then assigned in
    # an always block: that is how the init value reaches the FPGA's power-up state.
    -Wno-PROCASSINIT
    # Amaranth comb logic always starts from a default assignment (a signal's init value) and Array
    # indexing / FSM dispatch are emitted as (* full_case *) casez statements. Amaranth cannot
    # express a latch, so Verilator's incomplete-case and latch inferences are false positives.
    -Wno-CASEINCOMPLETE
    -Wno-LATCH
    # Amaranth fixes every operation's width exactly; the back end then writes operands of mixed
    # widths (e.g. "x[55:54] == 1'h1", "!x" on a vector) whose Verilog extension rules give the same
    # result. The widths were checked by Amaranth, not left to Verilog.
    -Wno-WIDTHEXPAND
    -Wno-WIDTHTRUNC
    # A generic comparison made constant by an operand's width (e.g. "level <= 3" on a 2-bit
    # level) is folded away by synthesis; it is not a wrong comparison.
    -Wno-CMPCONST
    # Every member of a flattened interface is a port of each submodule that receives it, used or
    # not, and Yosys keeps its intermediate "$N" wires; unused ones cost nothing after synthesis.
    -Wno-UNUSEDSIGNAL
)

if [ "$#" -eq 0 ]; then
    echo "usage: $0 FILE.v..." >&2
    exit 2
fi

status=0
for file in "$@"; do
    if verilator --lint-only -Wall --quiet-stats "${WAIVERS[@]}" "$file"; then
        echo "lint ok: $file"
    else
        echo "lint FAILED: $file" >&2
        status=1
    fi
done
exit "$status"
