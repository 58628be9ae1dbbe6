#!/usr/bin/python3
"""docs/kstretch.1, the man page, made from the binary's own key table.

    docs/man_page.py [--build build] --check   # exit 1 when docs/kstretch.1 differs
    docs/man_page.py [--build build] --write   # rewrite docs/kstretch.1
    docs/man_page.py [--build build] --stdout  # print it

`kstretch --list-keys` prints every configuration key of the one table in
proxy/config.c (NAME<TAB>DEFAULT<TAB>HELP), the same table `kstretch --help`
prints; the CONFIGURATION section below is made from it and nothing else, so
the page cannot name a key the code lacks, miss one it has, or show another
default. tests/integration/test_deploy.py runs --check.
"""
import argparse
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(REPO, "docs", "kstretch.1")


def keys(build):
    exe = os.path.join(build, "proxy", "kstretch")
    out = subprocess.run([exe, "--list-keys"], capture_output=True, text=True, timeout=10, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or not parts[2]:
            raise SystemExit(f"{exe} --list-keys: unexpected line {line!r}")
        rows.append(tuple(parts))
    if len(rows) < 10:
        raise SystemExit(f"{exe} --list-keys: only {len(rows)} keys:\n{out[:2000]}")
    return rows


def roff(text):
    """Plain text as roff: backslashes escaped, a leading dot or quote made inert, dashes as \\-."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


HEAD = r""".\" Made by docs/man_page.py --write from `kstretch --list-keys`; do not edit.
.TH KSTRETCH 1 "" "kstretch" "User Commands"
.SH NAME
kstretch \- Kafka wire\-protocol proxy for stretched (multi\-rack, multi\-region) clusters
.SH SYNOPSIS
.B kstretch
[\fB\-\-config\fR \fIFILE\fR] [\fB\-\-\fIKEY\fR \fIVALUE\fR | \fB\-\-\fIKEY\fB=\fIVALUE\fR]...
.br
.B kstretch \-\-check
[\fB\-\-offline\fR] [\fB\-\-config\fR \fIFILE\fR] [\fB\-\-\fIKEY\fR \fIVALUE\fR]...
.br
.B kstretch
\fB\-\-check\-config\fR | \fB\-\-print\-topology\fR | \fB\-\-list\-metrics\fR | \fB\-\-list\-keys\fR |
\fB\-\-help\fR | \fB\-\-version\fR
.SH DESCRIPTION
kstretch sits between Kafka clients and a Kafka cluster whose brokers span racks or
regions. In mapped mode (a sidecar) it opens a listener per broker and forwards each
client connection to its broker, rewriting the broker addresses in metadata answers to
its own. In regional mode (a tier behind a TCP load balancer) its nodes show the clients
of one region a virtual cluster made of those nodes.
.PP
Every configuration key below can be set in a Java .properties file given with
\fB\-\-config\fR (\fIkey\fR=\fIvalue\fR) or as a flag with the dots written as dashes
(\fBbootstrap.servers\fR is \fB\-\-bootstrap\-servers\fR); a flag wins over the file.
An unknown key or a bad value is an error naming the key and where it was set.
.SH OPTIONS
.TP
.BI \-\-config " FILE"
Read the configuration keys from \fIFILE\fR.
.TP
.B \-\-check
Validate the configuration, connect to the bootstrap servers (with upstream TLS and
SASL as configured, for at most \fBconnect.timeout.ms\fR), print the topology learned and
the listeners kstretch would open, and exit 0; exit non\-zero with the reason on
standard error for a bad configuration (2) or a cluster that does not answer (1).
.TP
.B \-\-offline
With \fB\-\-check\fR: validate without connecting and without reading certificate
files, and print the listeners the configuration alone decides (for CI and manifests).
.TP
.B \-\-check\-config
Validate and print the effective configuration as a .properties file.
.TP
.B \-\-print\-topology
Ask the cluster and print its brokers, racks, regions and kstretch's listeners.
.TP
.B \-\-list\-metrics
Print /metrics as it reads at start: every metric, its HELP and TYPE.
.TP
.B \-\-list\-keys
Print every configuration key, its default and its description, tab\-separated.
.TP
.BR \-\-help ", " \-h
Print the usage and every key.
.TP
.BR \-\-version ", " \-V
Print the version and the versions of the libraries linked.
.SH CONFIGURATION
"""

TAIL = r""".SH SIGNALS
.TP
.BR SIGTERM ", " SIGINT
Stop accepting, let in\-flight requests finish for up to \fBshutdown.drain.ms\fR, exit 0.
.TP
.B SIGHUP
Reload: read the TLS certificates and keys again, and as much of the configuration as
the running version changes in place (the README's "Operations" section says what);
what does not load is logged and the running configuration stays.
.SH EXIT STATUS
0 on success; 1 when the cluster did not answer or kstretch could not start; 2 for
a configuration error (the reason is on standard error).
.SH SEE ALSO
The README's "Operations" section; deploy/ in the source tree for a systemd unit, a
container recipe and Kubernetes manifests.
"""


def render(rows):
    out = [HEAD]
    for name, default, help_ in rows:
        flag = name.replace(".", "-")
        out.append(".TP\n")
        out.append(f"\\fB{roff(name)}\\fR (\\fB\\-\\-{roff(flag)}\\fR)")
        out.append(f" default \\fI{roff(default)}\\fR\n" if default else "\n")
        out.append(roff(help_) + "\n")
    out.append(TAIL)
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("KSTRETCH_BUILD", os.path.join(REPO, "build")))
    ap.add_argument("--page", default=PAGE)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", action="store_true")
    g.add_argument("--write", action="store_true")
    g.add_argument("--stdout", action="store_true")
    a = ap.parse_args()
    page = render(keys(a.build))
    if a.stdout:
        sys.stdout.write(page)
        return 0
    if a.write:
        with open(a.page, "w") as f:
            f.write(page)
        return 0
    try:
        with open(a.page) as f:
            have = f.read()
    except FileNotFoundError:
        have = ""
    if have != page:
        print(f"{a.page} differs from `kstretch --list-keys`: run docs/man_page.py --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
