"""Fixtures of the fault suite: the integration suite's (suite_support.py),
plus `fault_results`, the table every scenario adds a row to, written at the
end of the session to $KSTRETCH_RESULTS_DIR/faults-results.md (default: the
build directory) and printed in the terminal summary.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (os.path.join(os.path.dirname(HERE), "integration"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import faultlib  # noqa: E402
import suite_support  # noqa: E402

suite_support.borrow_integration_fixtures(globals())
_RESULTS = faultlib.Results()


@pytest.fixture(scope="session")
def fault_results():
    return _RESULTS


def pytest_terminal_summary(terminalreporter):
    if _RESULTS.rows:
        suite_support.write_results(terminalreporter, "faults-results.md", "fault suite results", _RESULTS.markdown())
