"""The kstretch binary as a user starts it: flags, a properties file, errors, signals."""
import os
import signal
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("KSTRETCH_BUILD", os.path.join(REPO, "build"))
KSTRETCH = os.path.join(BUILD, "proxy", "kstretch")


def kstretch(*args, timeout=10):
    assert os.access(KSTRETCH, os.X_OK), f"{KSTRETCH} is not built (run make)"
    return subprocess.run([KSTRETCH, *args], capture_output=True, text=True, timeout=timeout)


def test_version_and_help_describe_the_binary():
    v = kstretch("--version")
    assert v.returncode == 0
    assert v.stdout.startswith("kstretch 0.") and "libevent 2.1" in v.stdout and "OpenSSL 3" in v.stdout
    h = kstretch("--help")
    assert h.returncode == 0
    for flag in ("--bootstrap-servers", "--broker-port-base", "--region-map", "--max-frame-bytes"):
        assert flag in h.stdout


def test_list_metrics_prints_every_metric_and_the_readme_table_is_that_list():
    r = kstretch("--list-metrics")
    assert r.returncode == 0
    names = [line.split()[2] for line in r.stdout.splitlines() if line.startswith("# HELP ")]
    assert "kstretch_bytes_copied" in names and "kstretch_fetch_requests_as_v15" in names
    assert len(names) == len(set(names))
    check = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "docs", "metrics_table.py"), "--build", BUILD,
                            "--check"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


def test_the_example_configuration_is_valid():
    r = kstretch("--config", os.path.join(REPO, "kstretch.properties.example"), "--check-config")
    assert r.returncode == 0, r.stderr
    assert "rack=eu-west-1a\n" in r.stdout
    assert "region.map=eu-west-1*=eu,us-east-1*=us\n" in r.stdout


def test_a_flag_wins_over_the_file(tmp_path):
    conf = tmp_path / "k.properties"
    conf.write_text("bootstrap.servers=127.0.0.1:9092\nworkers=2\nbroker.port.base=20000\n")
    r = kstretch("--workers=3", "--config", str(conf), "--check-config")
    assert r.returncode == 0, r.stderr
    assert "workers=3\n" in r.stdout and "broker.port.base=20000\n" in r.stdout


@pytest.mark.parametrize("content,args,message", [
    ("bootstrap.servers=127.0.0.1:9092\nbootstrap.server=x:1\n", [],
     "{conf}:2: unknown key 'bootstrap.server'"),
    ("bootstrap.servers=127.0.0.1:9092\nbroker.port.base=70000\n", [],
     "{conf}:2: broker.port.base: '70000' is not an integer in 1..65535"),
    ("bootstrap.servers=127.0.0.1:9092\n", ["--mode", "sidecar"],
     "--mode: 'sidecar' is not one of: mapped, regional"),
    ("bootstrap.servers=127.0.0.1:9092\n", ["--no-such-flag", "1"],
     "--no-such-flag: unknown option"),
    ("workers=1\n", [], "bootstrap.servers: required"),
])
def test_a_bad_configuration_stops_startup_with_one_line_and_exit_code_2(tmp_path, content, args, message):
    conf = tmp_path / "k.properties"
    conf.write_text(content)
    r = kstretch("--config", str(conf), *args)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("kstretch: config error: ")
    assert message.format(conf=conf) in lines[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_kstretch_exits_cleanly_on_a_signal(sig):
    p = subprocess.Popen([KSTRETCH, "--bootstrap-servers", "127.0.0.1:9092", "--log-level", "debug"],
                         stderr=subprocess.PIPE, text=True)
    try:
        first = p.stderr.readline()
        assert "kstretch 0." in first and "starting" in first, first
        time.sleep(0.2)
        p.send_signal(sig)
        rc = p.wait(timeout=5)
        rest = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0
    assert "stopped" in rest, rest


@pytest.mark.parametrize("args,message", [
    (["--sasl-users", "/nonexistent/sasl.users"], "sasl.users: /nonexistent/sasl.users: No such file or directory"),
    (["--listener-mode", "sni", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key",
      "--sni-host-pattern", "broker-$(nodeId).kafka.example"],
     "mode=regional: listener.mode=sni: regional mode serves one virtual cluster on one port; SNI routing per "
     "broker does not apply"),
])
def test_regional_mode_refuses_what_does_not_apply_there_with_one_line_saying_why(args, message):
    """TLS on either side, SASL and proxy.protocol are served in regional mode; listener.mode=sni is refused at
    start, and so is a sasl.users file that cannot be read."""
    r = kstretch("--bootstrap-servers", "127.0.0.1:9", "--mode", "regional", "--region", "eu", "--regional-nodes",
                 "1@127.0.0.1:19", "--node-id", "1", *args)
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, r.stderr
    assert errors[0].endswith(message), r.stderr


def test_sasl_user_prints_a_users_line_per_scram_hash_and_refuses_what_it_cannot_use(tmp_path):
    r = subprocess.run([KSTRETCH, "--sasl-user", "app", "--iterations", "8192"], input="s3cret\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [ln.split(" ") for ln in r.stdout.splitlines()]
    assert [ln[:3] for ln in lines] == [["app", "SCRAM-SHA-256", "8192"], ["app", "SCRAM-SHA-512", "8192"]], lines
    assert "s3cret" not in r.stdout and lines[0][3] != lines[1][3], "a salt of its own per line"
    (tmp_path / "users").write_text(r.stdout)
    for argv, stdin, message in [(["--sasl-user", "a b"], "pw\n", "the name must be"),
                                 (["--sasl-user", "app"], "", "no password on stdin"),
                                 (["--sasl-user", "app"], "\n", "an empty password"),
                                 (["--sasl-user", "app", "--iterations", "10"], "pw\n", "is not in 4096..1000000"),
                                 (["--sasl-user"], "pw\n", "usage: kstretch --sasl-user NAME")]:
        r = subprocess.run([KSTRETCH, *argv], input=stdin, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and message in r.stderr, (argv, r.stderr)
