"""Fixtures of the hostile-input suite: the integration suite's
(suite_support.py), plus `hostile_results`, figures each test reports
(name -> text), written at the end of the session to
$KSTRETCH_RESULTS_DIR/hostile-results.md (default: the build directory) and
printed in the terminal summary.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for p in (os.path.join(os.path.dirname(HERE), "integration"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import suite_support  # noqa: E402

suite_support.borrow_integration_fixtures(globals())
_RESULTS = {}


@pytest.fixture(scope="session")
def hostile_results():
    return _RESULTS


def pytest_terminal_summary(terminalreporter):
    if _RESULTS:
        text = "".join(f"- **{name}**: {value}\n" for name, value in _RESULTS.items())
        suite_support.write_results(terminalreporter, "hostile-results.md", "hostile-input figures", text)
