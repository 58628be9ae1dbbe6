#!/usr/bin/env python3
"""Parses Prometheus text exposition on stdin with prometheus_client's parser
(the Prometheus project's Python client) and prints it as JSON:

    {"families": {NAME: {"type": T, "samples": [[SAMPLE_NAME, {LABELS}, VALUE], ...]}}}

Run under the tests' virtualenv (harness.venv_python(), `make deps-pip`
installs prometheus_client there); a malformed exposition makes the parser
raise, and this exits non-zero with its message.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    out = {}
    for fam in text_string_to_metric_families(sys.stdin.read()):
        if fam.name in out:
            raise SystemExit(f"metric family {fam.name} appears twice")
        out[fam.name] = {"type": fam.type,
                         "samples": [[s.name, dict(s.labels), s.value] for s in fam.samples]}
    json.dump({"families": out}, sys.stdout)


if __name__ == "__main__":
    main()
