"""deploy/ as an operator uses it, checked where it cannot run here: every
Kubernetes manifest parses and the kstretch in it starts from a configuration
that `kstretch --check --offline` accepts (with the values Kubernetes would
substitute); the sidecar and the regional tier are wired as the README says;
the systemd unit passes `systemd-analyze verify` and is hardened; the
container recipe builds with the commands CI runs; and `--help` and the man
page list every key of the configuration table.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

import harness

REPO = harness.REPO
DEPLOY = os.path.join(REPO, "deploy")
MANIFESTS = sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")))

# What Kubernetes puts in a downward-API env var, as a node in eu-west-1a would.
DOWNWARD = {
    "metadata.labels['topology.kubernetes.io/zone']": "eu-west-1a",
    "status.podIP": "10.10.3.7",
    "metadata.name": "billing-7d9f-abcde",
}


def kstretch(*args, timeout=10):
    harness.require_executable(harness.KSTRETCH, "kstretch")
    return subprocess.run([harness.KSTRETCH, *args], capture_output=True, text=True, timeout=timeout)


def documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def pod_specs(doc):
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [doc["spec"]["template"]["spec"]]
    return [doc["spec"]] if doc["kind"] == "Pod" else []


def kstretch_containers(docs):
    """(pod spec, container) of every container running the kstretch image."""
    out = []
    for d in docs:
        for spec in pod_specs(d):
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                if "kstretch" in c["image"]:
                    out.append((spec, c))
    return out


def properties(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def expand(value, env):
    """Kubernetes' $(VAR) expansion in command and args."""
    return re.sub(r"\$\((\w+)\)", lambda m: env[m[1]] if m[1] in env else m[0], value)


def container_env(c):
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in DOWNWARD, f"{c['name']}: env {e['name']} from {path}: no sample value for it"
            env[e["name"]] = DOWNWARD[path]
    return env


def command_line(docs, spec, c, tmp_path):
    """kstretch's argv as Kubernetes would start it, its --config file written
    from the ConfigMap mounted there; and that configuration's keys."""
    env = container_env(c)
    argv = [expand(a, env) for a in c.get("command", [])[1:] + c.get("args", [])]
    assert not [a for a in argv if "$(" in a], f"{c['name']}: unexpanded variable in {argv}"
    conf = {}
    if "--config" in argv:
        i = argv.index("--config") + 1
        path = argv[i]
        mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
        vol = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == vol["configMap"]["name"])
        key = os.path.relpath(path, mount["mountPath"])
        text = cm["data"][key]
        local = tmp_path / f"{cm['metadata']['name']}-{key}"
        local.write_text(text)
        argv[i] = str(local)
        conf = properties(text)
    return argv, conf


def test_every_manifest_parses_into_named_kubernetes_objects():
    assert MANIFESTS, "no manifests under deploy/kubernetes"
    kinds = set()
    for path in MANIFESTS:
        for d in documents(path):
            assert isinstance(d, dict) and d.get("apiVersion") and d.get("kind"), path
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", d["metadata"]["name"]), d["metadata"]
            kinds.add(d["kind"])
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= kinds


@pytest.mark.parametrize("path", MANIFESTS, ids=os.path.basename)
def test_the_kstretch_command_line_of_every_manifest_passes_check_offline(path, tmp_path):
    docs = documents(path)
    found = kstretch_containers(docs)
    assert found, f"{path}: no kstretch container"
    for spec, c in found:
        argv, _ = command_line(docs, spec, c, tmp_path)
        r = kstretch("--check", "--offline", *argv)
        print(f"{os.path.basename(path)} {c['name']}: kstretch --check --offline {shlex.join(argv)}\n{r.stdout}")
        assert r.returncode == 0, f"{path}: {c['name']}: {r.stderr}"
        assert "check: OK" in r.stdout
        # the same check fails on a broken copy: it does look at the configuration
        bad = list(argv) + ["--broker-port-base", "0"]
        assert kstretch("--check", "--offline", *bad).returncode == 2


def test_the_sidecar_client_bootstraps_at_localhost_and_kstretch_takes_its_rack_from_the_node_zone(tmp_path):
    docs = documents(os.path.join(DEPLOY, "kubernetes", "sidecar.yaml"))
    [(spec, k)] = kstretch_containers(docs)
    argv, conf = command_line(docs, spec, k, tmp_path)
    assert conf.get("mode", "mapped") == "mapped"
    host, port = conf["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and conf.get("admin.listen", "127.0.0.1:9644").startswith("127.0.0.1:")
    # --rack comes from the node's zone label through the downward API
    assert argv[argv.index("--rack") + 1] == "eu-west-1a"
    rack_env = next(e for e in k["env"] if f"$({e['name']})" in k["args"])
    assert rack_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['topology.kubernetes.io/zone']"
    # kstretch is a native sidecar: it starts before the client and outlives it
    assert k in spec["initContainers"] and k.get("restartPolicy") == "Always"
    clients = [c for c in spec["containers"] if c is not k]
    assert clients
    for c in clients:
        bootstrap = {e["name"]: e.get("value") for e in c.get("env", [])}.get("KAFKA_BOOTSTRAP_SERVERS")
        assert bootstrap == f"localhost:{port}", c
    # kstretch's own rack, as the configuration it starts with says
    r = kstretch("--check-config", *argv)
    assert r.returncode == 0 and "\nrack=eu-west-1a\n" in r.stdout, r.stdout + r.stderr


def test_the_regional_tier_spreads_over_zones_is_ready_on_readyz_and_takes_proxy_protocol(tmp_path):
    docs = documents(os.path.join(DEPLOY, "kubernetes", "regional.yaml"))
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    [dep] = by_kind["Deployment"]
    spec = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    [(spec, k)] = kstretch_containers(docs)
    argv, conf = command_line(docs, spec, k, tmp_path)
    assert conf["mode"] == "regional" and conf["region"]
    # topology spread over the zones, for these pods
    zone = [t for t in spec["topologySpreadConstraints"] if t["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zone and zone[0]["maxSkew"] == 1
    assert zone[0]["labelSelector"]["matchLabels"].items() <= labels.items()
    # readiness is /readyz on the admin port, reachable by the kubelet (not loopback)
    ports = {p["name"]: p["containerPort"] for p in k["ports"]}
    probe = k["readinessProbe"]["httpGet"]
    assert probe["path"] == "/readyz"
    admin_host, admin_port = conf["admin.listen"].rsplit(":", 1)
    assert ports.get(probe["port"], probe["port"]) == int(admin_port) and admin_host == "0.0.0.0"
    assert k["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # the Service selects these pods and has a port per virtual node of regional.nodes, to kstretch's listener
    [svc] = by_kind["Service"]
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["selector"].items() <= labels.items()
    listen_port = int(conf["listen"].rsplit(":", 1)[1])
    nodes = [n.split("@", 1)[1] for n in conf["regional.nodes"].split(",")]
    assert sorted(int(n.rsplit(":", 1)[1]) for n in nodes) == sorted(p["port"] for p in svc["spec"]["ports"])
    assert {n.rsplit(":", 1)[0] for n in nodes} == {conf["advertised.host"]}
    for p in svc["spec"]["ports"]:
        assert ports.get(p["targetPort"], p["targetPort"]) == listen_port
    # PROXY protocol: the balancer sends it, kstretch requires it
    assert conf["proxy.protocol"] in ("v1", "v2")
    assert any("proxy_protocol" in f"{a}={v}".lower() for a, v in svc["metadata"].get("annotations", {}).items())
    # a PodDisruptionBudget for the same pods
    [pdb] = by_kind["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")


# ---------------------------------------------------------------- systemd

UNIT = os.path.join(DEPLOY, "systemd", "kstretch.service")


def unit_settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")):
                k, _, v = line.partition("=")
                out.setdefault(k, []).append(v)
    return out


def test_the_systemd_unit_is_hardened_and_its_command_line_passes_check_offline(tmp_path):
    s = unit_settings()
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("CapabilityBoundingSet", ""),
                       ("DynamicUser", "yes"), ("PrivateTmp", "yes"), ("ProtectHome", "yes"),
                       ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX")]:
        assert s.get(key) == [value], f"{key}={s.get(key)}"
    start = shlex.split(s["ExecStart"][0])
    assert start[0] == "/usr/local/bin/kstretch"
    pre = shlex.split(s["ExecStartPre"][0])
    assert pre == [start[0], "--check", "--offline", *start[1:]]
    # /etc/kstretch/kstretch.properties is deploy/systemd/kstretch.properties
    args = [os.path.join(DEPLOY, "systemd", "kstretch.properties") if a == "/etc/kstretch/kstretch.properties"
            else a for a in start[1:]]
    r = kstretch("--check", "--offline", *args)
    assert r.returncode == 0, r.stderr


def test_the_systemd_unit_passes_systemd_analyze_verify_and_security(tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        print("SKIPPED CHECK: systemd-analyze is not installed (Debian package systemd): the unit was not verified")
        pytest.skip("systemd-analyze is not installed (apt-get install systemd): unit not verified")
    # verify needs ExecStart's binary and Documentation='s man page: the built ones
    unit = tmp_path / "kstretch.service"
    with open(UNIT) as f:
        unit.write_text(f.read().replace("/usr/local/bin/kstretch", harness.KSTRETCH))
    man = tmp_path / "man" / "man1"
    man.mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "docs", "kstretch.1"), man)
    env = dict(os.environ, MANPATH=str(tmp_path / "man"))
    r = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, env=env)
    print(r.stdout, r.stderr)
    assert r.returncode == 0 and "kstretch.service" not in r.stderr, r.stderr
    r = subprocess.run([tool, "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60,
                       env=env)
    m = re.search(r"Overall exposure level for kstretch\.service: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"systemd-analyze security: exposure {m[1]}")
    assert float(m[1]) <= 2.0, r.stdout


# ---------------------------------------------------------------- container

DOCKERFILE = os.path.join(DEPLOY, "container", "Dockerfile")


def dockerfile():
    """(stages, RUN commands of the build stage split at &&, COPY sources of the build stage)."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages, runs, copies = [], [], []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            stages.append(rest.split())
        elif word == "RUN" and len(stages) == 1:
            runs += [" ".join(c.split()) for c in rest.split("&&")]
        elif word == "COPY" and len(stages) == 1:
            copies += rest.split()[:-1]
        elif word == "USER":
            stages[-1].append(f"USER={rest}")
    return stages, runs, copies


def ci_build_commands():
    """The meson and ninja commands of `make build` and `make test-unit` as CI runs them (CI=1)."""
    with open(os.path.join(REPO, "Makefile")) as f:
        lines = f.read().splitlines()
    wanted = ("$(BUILD)/build.ninja:", "build:", "test-unit:")
    out, current = [], None
    for line in lines:
        if not line.startswith("\t"):
            current = next((w for w in wanted if line.startswith(w)), None)
            continue
        cmd = line.strip()
        if current is None or cmd.startswith("@") or not cmd.startswith(("meson", "ninja")):
            continue
        if cmd.startswith("meson configure"):
            continue  # only sets -Drdkafka_modern again
        cmd = cmd.replace("-Drdkafka_modern=$(RDKAFKA_MODERN)", "")
        cmd = cmd.replace("$(MESON_OPTS)", "-Dwerror=true").replace("$(BUILD)", "build")
        out.append(" ".join(cmd.split()))
    return out


def test_the_container_is_multi_stage_debian_slim_non_root_and_builds_with_ci_s_commands():
    stages, runs, _ = dockerfile()
    assert len(stages) == 2 and all(s[0] == "debian:12-slim" for s in stages), stages
    user = [s for s in stages[1] if s.startswith("USER=")]
    assert user and not re.fullmatch(r"USER=(0|root)(:.*)?", user[-1]), stages[1]
    ci = ci_build_commands()
    assert len(ci) == 3 and ci[0].startswith("meson setup") and ci[1].startswith("ninja"), ci
    assert [r for r in runs if r.startswith(("meson", "ninja"))] == ci, f"Dockerfile {runs} vs Makefile {ci}"


def test_the_container_s_build_context_is_enough_to_configure_the_build(tmp_path):
    # The COPY lines of the build stage: a tree made of just them configures
    # (meson checks every source file every meson.build names).
    _, _, copies = dockerfile()
    ctx = tmp_path / "src"
    ctx.mkdir()
    for src in copies:
        p = os.path.join(REPO, src)
        (shutil.copytree if os.path.isdir(p) else shutil.copy)(p, ctx / src)
    r = subprocess.run(["meson", "setup", str(ctx / "build"), "-Dwerror=true"], cwd=ctx, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


# ---------------------------------------------------------------- --help and the man page

def list_keys():
    r = kstretch("--list-keys")
    assert r.returncode == 0
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert rows and all(len(row) == 3 for row in rows)
    return rows


def test_help_lists_every_key_of_the_table_with_its_default():
    h = kstretch("--help").stdout
    for name, default, help_ in list_keys():
        flag = "--" + name.replace(".", "-")
        assert flag in h, flag
        if default:
            assert f"({name}={default} by default)" in h, name
        assert " ".join(help_.split()[:4]) in " ".join(h.split()), name
    assert "--check --offline" in h and "--log-format" in h


def test_the_man_page_is_made_from_the_table_and_renders_without_warnings():
    r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "docs", "man_page.py"), "--build", harness.BUILD,
                        "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(REPO, "docs", "kstretch.1")) as f:
        page = f.read()
    for name, default, _ in list_keys():
        assert f"\\fB{name.replace('-', chr(92) + '-')}\\fR" in page, name
    groff = harness.require_executable("/usr/bin/groff", "groff", "apt-get install groff-base (make deps-apt)")
    r = subprocess.run(["/usr/bin/groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(REPO, "docs", "kstretch.1")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stderr, r.stderr
