"""What the fault and hostile-input suites (tests/faults, tests/hostile) take
from the integration suite: its fixtures (start_cluster, start_kstretch,
process_log_dir) and its report of kstretch's stderr on a failure, by
loading tests/integration/conftest.py once under another module name; and
where their figures go at the end of a session.
"""
import importlib.util
import os
import sys

import harness

INTEGRATION = os.path.dirname(os.path.abspath(__file__))
SHARED = ("process_log_dir", "start_cluster", "start_kstretch", "pytest_runtest_makereport")


def borrow_integration_fixtures(namespace):
    """Puts the integration suite's fixtures and report hook into a
    conftest's namespace (pass globals())."""
    name = "kstretch_integration_conftest"
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, os.path.join(INTEGRATION, "conftest.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    for attr in SHARED:
        namespace[attr] = getattr(mod, attr)


def results_path(name):
    """Where a results file goes: $KSTRETCH_RESULTS_DIR, else the build directory."""
    return os.path.join(os.environ.get("KSTRETCH_RESULTS_DIR") or harness.BUILD, name)


def write_results(terminalreporter, name, title, text):
    """Writes a suite's figures to results_path(name) and into pytest's summary."""
    path = results_path(name)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        where = f" (written to {path})"
    except OSError as e:
        where = f" (not written to {path}: {e})"
    terminalreporter.write_sep("=", title + where)
    terminalreporter.write(text)
