#!/usr/bin/python3
"""The README's metrics table, made from the binary's own list.

    docs/metrics_table.py [--build build] --check   # exit 1 when README.md's table differs
    docs/metrics_table.py [--build build] --write   # rewrite it in README.md

`kstretch --list-metrics` prints /metrics as it reads at start: a HELP and a
TYPE line for every metric, from the one table in proxy/metrics.h and the
labelled families after it (metrics.c). A labelled family's HELP ends with
its label names in braces, `{api,part,le}`; the table shows them after the
name (`kstretch_api_requests_total{api}`), and a histogram's name stands for
its _bucket, _sum and _count series. The table
sits in README.md between the two marker comments below; `make test` runs
--check (tests/integration/test_kstretch_cli.py), so the README cannot name
a metric the code lacks or miss one it has.
"""
import argparse
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- metrics table: made by docs/metrics_table.py --write from `kstretch --list-metrics` -->"
END = "<!-- end of metrics table -->"


def metrics(build):
    exe = os.path.join(build, "proxy", "kstretch")
    out = subprocess.run([exe, "--list-metrics"], capture_output=True, text=True, timeout=10, check=True).stdout
    helps, types = {}, {}
    for line in out.splitlines():
        m = re.match(r"^# (HELP|TYPE) (\S+) (.*)$", line)
        if m:
            (helps if m[1] == "HELP" else types)[m[2]] = m[3]
    if not helps or set(helps) != set(types):
        raise SystemExit(f"{exe} --list-metrics: unexpected output:\n{out[:2000]}")
    return [(name, types[name], helps[name]) for name in helps]


LABELS = re.compile(r"\s*\{([a-z_]+(?:,[a-z_]+)*)\}$")


def render(rows):
    lines = [BEGIN, "", "| metric | type | meaning |", "| --- | --- | --- |"]
    for name, kind, help_ in rows:
        m = LABELS.search(help_)
        label = f"`{name}{{{m[1]}}}`" if m else f"`{name}`"
        if m:
            help_ = help_[:m.start()]
        if kind == "histogram":
            label += " (`_bucket`, `_sum`, `_count`)"
        lines.append(f"| {label} | {kind} | {help_.replace('|', '/')} |")
    lines += ["", END]
    return "\n".join(lines)


def split_readme(text):
    a, b = text.find(BEGIN), text.find(END)
    if a < 0 or b < a:
        raise SystemExit("README.md has no metrics table markers")
    return text[:a], text[a:b + len(END)], text[b + len(END):]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("KSTRETCH_BUILD", os.path.join(REPO, "build")))
    ap.add_argument("--readme", default=os.path.join(REPO, "README.md"))
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true")
    g.add_argument("--write", action="store_true")
    args = ap.parse_args()
    with open(args.readme) as f:
        text = f.read()
    head, table, tail = split_readme(text)
    want = render(metrics(args.build))
    if args.check:
        if table != want:
            print("README.md's metrics table is not the binary's list; run docs/metrics_table.py --write\n"
                  f"--- README.md\n{table}\n--- kstretch --list-metrics\n{want}", file=sys.stderr)
            return 1
        return 0
    if table != want:
        with open(args.readme, "w") as f:
            f.write(head + want + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
