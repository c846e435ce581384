#!/usr/bin/env python3
"""Structural checks of deploy/, run by deploy/validate.sh (python >= 3.11 and PyYAML).

Every check prints "ok   <name>" or "FAIL <name>: <reason>"; the exit status is 1 if any failed.
Nothing here needs docker, systemd or a cluster.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import yaml

DEPLOY = Path(os.environ.get("DEPLOY_DIR") or Path(__file__).resolve().parent)
REPO = DEPLOY.parent
FAILED: list[str] = []


def rel(p: Path) -> str:
    try:
        return str(p.relative_to(DEPLOY))
    except ValueError:
        return str(p)


class Check:
    """Collects problems for one named check and reports once."""

    def __init__(self, name: str):
        self.name = name
        self.problems: list[str] = []

    def __enter__(self) -> "Check":
        return self

    def expect(self, cond: object, problem: str) -> bool:
        if not cond:
            self.problems.append(problem)
        return bool(cond)

    def __exit__(self, et, ev, tb) -> bool:
        if ev is not None:
            self.problems.append(f"{type(ev).__name__}: {ev}")
        if self.problems:
            FAILED.append(self.name)
            print(f"FAIL {self.name}:")
            for p in self.problems:
                print(f"       - {p}")
            if getattr(self, "hint", ""):
                print(f"       ({self.hint})")
        else:
            print(f"ok   {self.name}")
        return True  # exceptions are reported as failures, the other checks still run


def files(*patterns: str) -> list[Path]:
    out: set[Path] = set()
    for pat in patterns:
        out.update(p for p in DEPLOY.rglob(pat) if p.is_file())
    return sorted(out)


# ---------------------------------------------------------------------------------------------------
# YAML and TOML syntax
# ---------------------------------------------------------------------------------------------------

YAML_DOCS: dict[Path, list] = {}
for path in files("*.yaml", "*.yml"):
    with Check(f"yaml parses: {rel(path)}") as c:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        c.expect(docs, "no documents")
        YAML_DOCS[path] = docs

for path in files("*.toml"):
    with Check(f"toml parses: {rel(path)}") as c:
        tomllib.loads(path.read_text())

# TOML embedded in ConfigMaps.
EMBEDDED_TOML: dict[str, str] = {}
for path, docs in YAML_DOCS.items():
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "ConfigMap":
            for key, text in (d.get("data") or {}).items():
                if key.endswith(".toml"):
                    name = f"{rel(path)}#{d['metadata']['name']}/{key}"
                    with Check(f"toml parses: {name}") as c:
                        tomllib.loads(text)
                        EMBEDDED_TOML[name] = text

# ---------------------------------------------------------------------------------------------------
# Configuration copies: same options, same comments, defaults stated, no secrets
# ---------------------------------------------------------------------------------------------------

KEY_LINE = re.compile(r"^(#\s*)?([a-z][a-z0-9_]*) = (.*)$")


def example_keys(text: str) -> dict[str, tuple[bool, str]]:
    """key -> (set in the file?, literal value) for set and commented-out options."""
    out: dict[str, tuple[bool, str]] = {}
    for line in text.splitlines():
        m = KEY_LINE.match(line)
        if m:
            out.setdefault(m.group(2), (m.group(1) is None, m.group(3).strip()))
    return out


def check_copy(name: str, text: str, example_path: Path) -> None:
    example = example_path.read_text()
    with Check(f"config copy matches {example_path.name}: {name}") as c:
        c.hint = "regenerate with deploy/sync-configs.py after changing an example"
        ex_keys = example_keys(example)
        ex_values = tomllib.loads(example)
        values = tomllib.loads(text)
        lines = text.splitlines()
        # 1. only known options (the binaries reject unknown keys)
        for k in values:
            c.expect(k in ex_keys, f"unknown option {k!r} (not in {example_path.name})")
        # 2. every option present, set or commented out
        mentioned = example_keys(text)
        for k in ex_keys:
            c.expect(k in mentioned, f"option {k!r} missing (set it or keep it commented)")
        # 3. the example's comments, in order (the copy may add lines, never drop or edit them)
        it = iter(lines)
        for line in example.splitlines():
            if line.startswith("#") and not KEY_LINE.match(line):
                if not any(line == l for l in it):
                    c.expect(False, f"example comment missing or edited: {line[:70]!r}")
                    break
        # 4. a value that differs from the default says what the default is
        for k, v in values.items():
            if k not in ex_keys:
                continue
            if k in ex_values and ex_values[k] == v:
                continue
            was_set, literal = ex_keys[k]
            want = f"# Default: {k} = {literal}" if was_set else "# Default: unset"
            c.expect(any(l.startswith(want) for l in lines), f"{k} differs from the default: add {want!r}")
        # 5. no secrets in configuration files
        c.expect(values.get("jwt_secret", "") == "", "jwt_secret must come from the environment")
        c.expect(values.get("node_token", "") == "", "node_token must not be in a config file")
        db = values.get("database_url", "")
        c.expect(not (db and urlsplit(db).password), "database_url with a password belongs in a secret")


CONTROLLER_EXAMPLE = DEPLOY / "controller.example.toml"
AGENT_EXAMPLE = DEPLOY / "agent.example.toml"
for path in files("*.toml"):
    if path.parent == DEPLOY:
        continue  # the examples themselves
    if path.parent.name == "adapters":
        # Declared game adapters: TOML with a name; the controller's tests load them for real.
        with Check(f"game adapter parses: {rel(path)}") as c:
            adapter = tomllib.loads(path.read_text())
            c.expect(isinstance(adapter.get("name"), str), "adapter without a name")
        continue
    ex = AGENT_EXAMPLE if "agent" in path.name else CONTROLLER_EXAMPLE
    check_copy(rel(path), path.read_text(), ex)
for name, text in EMBEDDED_TOML.items():
    check_copy(name, text, AGENT_EXAMPLE if "agent" in name.rsplit("/", 1)[-1] else CONTROLLER_EXAMPLE)

# ---------------------------------------------------------------------------------------------------
# systemd units (structure; systemd-analyze verify runs in validate.sh when present)
# ---------------------------------------------------------------------------------------------------

KNOWN_KEYS = {
    "Unit": {
        "Description", "Documentation", "Wants", "Requires", "Requisite", "BindsTo", "PartOf",
        "Upholds", "Conflicts", "Before", "After", "OnFailure", "OnSuccess", "StartLimitIntervalSec",
        "StartLimitBurst", "StartLimitAction", "ConditionPathExists", "AssertPathExists",
    },
    "Service": {
        "Type", "User", "Group", "SupplementaryGroups", "DynamicUser", "ExecStartPre", "ExecStart",
        "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "Environment", "EnvironmentFile",
        "LoadCredential", "SetCredential", "StateDirectory", "StateDirectoryMode", "RuntimeDirectory",
        "RuntimeDirectoryMode", "ConfigurationDirectory", "LogsDirectory", "CacheDirectory",
        "WorkingDirectory", "UMask", "Restart", "RestartSec", "RestartPreventExitStatus",
        "SuccessExitStatus", "TimeoutStartSec", "TimeoutStopSec", "TimeoutSec", "KillMode",
        "KillSignal", "SendSIGKILL", "OOMPolicy", "OOMScoreAdjust", "TasksMax", "LimitNOFILE",
        "LimitCORE", "MemoryMax", "MemoryHigh", "CPUQuota", "Delegate", "NoNewPrivileges",
        "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem", "ProtectHome", "PrivateTmp",
        "PrivateDevices", "PrivateNetwork", "PrivateUsers", "ProtectKernelTunables",
        "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
        "ProtectHostname", "ProtectProc", "ProcSubset", "RestrictSUIDSGID", "RestrictRealtime",
        "RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC",
        "RestrictAddressFamilies", "SystemCallArchitectures", "SystemCallFilter",
        "SystemCallErrorNumber", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
        "StandardOutput", "StandardError", "SyslogIdentifier", "WatchdogSec", "NotifyAccess",
    },
    "Install": {"WantedBy", "RequiredBy", "Alias", "Also"},
}


def parse_unit(text: str) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    sections: dict[str, dict[str, list[str]]] = {}
    problems: list[str] = []
    cur = None
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith(("#", ";"))):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append((start, buf + line))
        buf = ""
    for n, line in logical:
        if line.startswith("["):
            m = re.fullmatch(r"\[([A-Za-z]+)\]", line.strip())
            if not m:
                problems.append(f"line {n}: bad section header {line!r}")
                continue
            cur = m.group(1)
            if cur in sections:
                problems.append(f"line {n}: section [{cur}] twice")
            sections.setdefault(cur, {})
            continue
        if "=" not in line:
            problems.append(f"line {n}: not key=value: {line!r}")
            continue
        if cur is None:
            problems.append(f"line {n}: key before any section")
            continue
        k, v = line.split("=", 1)
        sections[cur].setdefault(k.strip(), []).append(v.strip())
    return sections, problems


def last(sec: dict[str, list[str]], key: str, default: str = "") -> str:
    return sec.get(key, [default])[-1]


UNITS: dict[str, dict] = {}
for path in files("*.service"):
    with Check(f"systemd unit structure: {rel(path)}") as c:
        secs, problems = parse_unit(path.read_text())
        UNITS[path.name] = secs
        for p in problems:
            c.expect(False, p)
        c.expect(set(secs) == {"Unit", "Service", "Install"},
                 f"sections must be [Unit] [Service] [Install], got {sorted(secs)}")
        for sname, keys in secs.items():
            for k in keys:
                c.expect(k in KNOWN_KEYS.get(sname, set()), f"[{sname}] unknown key {k}")
        svc = secs.get("Service", {})
        execs = svc.get("ExecStart", [])
        c.expect(len(execs) == 1, "exactly one ExecStart")
        for e in execs:
            argv = shlex.split(e.lstrip("-@:+!"))
            c.expect(argv and argv[0].startswith("/"), f"ExecStart not absolute: {e}")
            if "--config" in argv:
                cfg = argv[argv.index("--config") + 1]
                c.expect(cfg.startswith("/etc/languard/"), f"config {cfg} not in /etc/languard/")
                c.expect((path.parent / Path(cfg).name).is_file(),
                         f"no example {Path(cfg).name} next to the unit for {cfg}")
        user = last(svc, "User")
        c.expect(user and user != "root", "a dedicated User= (not root)")
        c.expect(last(svc, "Restart") in {"on-failure", "always", "on-abnormal"}, "Restart= policy")
        c.expect("EnvironmentFile" in svc, "EnvironmentFile= for secrets/overrides")
        c.expect(any(v.startswith(("-/etc/languard/", "/etc/languard/")) for v in svc.get("EnvironmentFile", [])),
                 "EnvironmentFile in /etc/languard/")
        state = last(svc, "StateDirectory")
        c.expect(state.startswith("languard/"), "StateDirectory=languard/...")
        c.expect(last(svc, "NoNewPrivileges") == "yes", "NoNewPrivileges=yes")
        c.expect(last(svc, "ProtectSystem") != "strict" or "ReadWritePaths" in svc or state,
                 "ProtectSystem=strict needs ReadWritePaths or a StateDirectory")
        c.expect(secs.get("Install", {}).get("WantedBy") == ["multi-user.target"], "WantedBy=multi-user.target")
        # the config's data dir / state dir is the unit's StateDirectory
        cfgs = [a for e in execs for a in shlex.split(e) if a.endswith(".toml")]
        if cfgs and (path.parent / Path(cfgs[0]).name).is_file():
            conf = tomllib.loads((path.parent / Path(cfgs[0]).name).read_text())
            d = conf.get("data_dir") or conf.get("state_dir")
            c.expect(d == f"/var/lib/{state}", f"data_dir/state_dir {d!r} != /var/lib/{state}")

with Check("systemd: languard-controller.service specifics") as c:
    svc = UNITS.get("languard-controller.service", {}).get("Service")
    if c.expect(svc is not None, "missing"):
        c.expect(last(svc, "User") == "languard", "User=languard")
        c.expect(last(svc, "KillMode", "control-group") == "control-group", "default KillMode")
        c.expect("2" in last(svc, "RestartPreventExitStatus").split(), "no restart on exit 2 (bad config)")

with Check("systemd: languard-agent.service keeps game servers running") as c:
    svc = UNITS.get("languard-agent.service", {}).get("Service")
    if c.expect(svc is not None, "missing"):
        c.expect(last(svc, "User") == "languard-agent", "User=languard-agent")
        c.expect(last(svc, "KillMode") == "process", "KillMode=process (game servers survive restarts)")
        c.expect(last(svc, "OOMPolicy") == "continue", "OOMPolicy=continue (a game server OOM is not the unit's)")
        c.expect(last(svc, "TasksMax") == "infinity", "TasksMax=infinity (game servers share the cgroup)")
        c.expect(last(svc, "PrivateTmp", "no") == "no", "PrivateTmp must stay off (outlives the unit)")
        for k in ("MemoryDenyWriteExecute", "SystemCallFilter", "SystemCallArchitectures", "MemoryMax",
                  "CPUQuota", "PrivateNetwork", "PrivateUsers", "DynamicUser"):
            c.expect(k not in svc or last(svc, k) in {"no", ""}, f"{k} is inherited by the game servers")
        c.expect(last(svc, "ProtectSystem") != "strict" or "ReadWritePaths" in svc,
                 "ProtectSystem=strict without ReadWritePaths breaks the game servers' profiles dirs")
        c.expect(last(svc, "ProcSubset", "all") == "all", "ProcSubset=pid hides /proc/stat from the metrics")
        c.expect(not any("NODE_TOKEN" in v for v in svc.get("Environment", [])),
                 "the node token must not be in the environment (inherited by game servers)")
        c.expect("--node-token-file" in " ".join(svc.get("ExecStart", [])) and "LoadCredential" in svc,
                 "node token via LoadCredential + --node-token-file")

# ---------------------------------------------------------------------------------------------------
# Dockerfiles
# ---------------------------------------------------------------------------------------------------


def dockerfile(path: Path) -> list[tuple[str, str]]:
    instr: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        full = buf + line
        buf = ""
        op, _, rest = full.partition(" ")
        instr.append((op.upper(), rest.strip()))
    return instr


def ignore_patterns(path: Path) -> list[str]:
    return [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")]


EXPOSED: dict[str, set[int]] = {}
HEALTHCHECKED: set[str] = set()
for crate in ("controller", "agent"):
    path = DEPLOY / "docker" / f"{crate}.Dockerfile"
    binary = f"languard-{crate}"
    with Check(f"dockerfile: {rel(path)}") as c:
        if not c.expect(path.is_file(), "missing"):
            continue
        ins = dockerfile(path)
        args = {}
        for op, rest in ins:
            if op == "ARG" and "=" in rest:
                k, v = rest.split("=", 1)
                args[k] = v
        stages = []  # (image, name, [instructions])
        for op, rest in ins:
            if op == "FROM":
                parts = rest.split()
                image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
                name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else ""
                stages.append((image, name, []))
            elif stages:
                stages[-1][2].append((op, rest))
        c.expect(len(stages) >= 2, "multi-stage build")
        if len(stages) >= 2:
            bimg, bname, bins = stages[0]
            c.expect(bimg == "rust:1.95-bookworm", f"builder image {bimg}")
            c.expect(bname == "builder", "first stage named builder")
            c.expect(any(op == "RUN" and "cargo build --release" in r and f"-p {binary}" in r for op, r in bins),
                     f"builder runs cargo build --release -p {binary}")
            fimg, _, fins = stages[-1]
            c.expect(fimg == "debian:bookworm-slim", f"runtime image {fimg}")
            users = [r for op, r in fins if op == "USER"]
            c.expect(users and users[-1].split(":")[0] not in {"root", "0"}, "runtime USER is not root")
            c.expect(any(op == "COPY" and "--from=builder" in r and binary in r for op, r in fins),
                     "runtime copies the binary from the builder")
            for op, r in fins:
                if op == "COPY" and "--from" not in r:
                    for src in r.split()[:-1]:
                        c.expect((REPO / src).exists(), f"COPY source {src} missing (context: repo root)")
                        for pat in ignore_patterns(path.with_name(path.name + ".dockerignore")):
                            c.expect(not fnmatch.fnmatch(src, pat.rstrip("/")) and not src.startswith(pat),
                                     f"COPY source {src} is excluded by the .dockerignore pattern {pat}")
            ep = [json.loads(r) for op, r in fins if op == "ENTRYPOINT"]
            c.expect(ep and ep[-1][0] == f"/usr/local/bin/{binary}", "ENTRYPOINT is the binary")
            cmd = [json.loads(r) for op, r in fins if op == "CMD"]
            if cmd and "--config" in cmd[-1]:
                cfg = cmd[-1][cmd[-1].index("--config") + 1]
                c.expect(any(op == "COPY" and r.split()[-1] == cfg for op, r in fins),
                         f"CMD --config {cfg} is COPYed into the image")
            EXPOSED[crate] = {int(p.split("/")[0]) for op, r in fins if op == "EXPOSE" for p in r.split()}
            hc = [r for op, r in fins if op == "HEALTHCHECK"]
            if crate == "controller":
                c.expect(50051 in EXPOSED[crate], "EXPOSE 50051")
                if c.expect(hc, "HEALTHCHECK"):
                    m = re.search(r"CMD\s+(\[.*\])\s*$", hc[-1])
                    if c.expect(m, "HEALTHCHECK CMD in exec (JSON) form"):
                        argv = json.loads(m.group(1))
                        script = " ".join(argv)
                        c.expect("/healthz" in script, "health check GETs /healthz")
                        c.expect("/50051" in script or ":50051" in script, "health check uses port 50051")
                        HEALTHCHECKED.add(crate)
            stopsig = [r for op, r in fins if op == "STOPSIGNAL"]
            c.expect(not stopsig or stopsig[-1] == "SIGTERM", "STOPSIGNAL SIGTERM")

with Check("dockerignore files agree and exclude target/ and .git/") as c:
    ig = {p.name: ignore_patterns(p) for p in (DEPLOY / "docker").glob("*.Dockerfile.dockerignore")}
    c.expect(set(ig) == {"controller.Dockerfile.dockerignore", "agent.Dockerfile.dockerignore"},
             f"expected one per Dockerfile, got {sorted(ig)}")
    vals = list(ig.values())
    c.expect(all(v == vals[0] for v in vals), "patterns differ between the files")
    for v in vals:
        c.expect("target/" in v or "target" in v, "target/ excluded")
        c.expect(".git/" in v or ".git" in v, ".git/ excluded")

# ---------------------------------------------------------------------------------------------------
# compose.yaml
# ---------------------------------------------------------------------------------------------------

ENV_INTERP = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


def env_map(env) -> dict[str, str]:
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


def listen_port(v: str) -> int:
    return int(v.rsplit(":", 1)[1])


compose_path = DEPLOY / "docker" / "compose.yaml"
with Check(f"compose: {rel(compose_path)}") as c:
    comp = YAML_DOCS[compose_path][0]
    svcs = comp.get("services", {})
    c.expect({"postgres", "controller", "agent"} <= set(svcs), f"services postgres, controller, agent: {sorted(svcs)}")
    pg, ctl, ag = svcs.get("postgres", {}), svcs.get("controller", {}), svcs.get("agent", {})
    pgenv = env_map(pg.get("environment"))
    c.expect(pg.get("image") == "postgres:16", "postgres image postgres:16")
    c.expect("pg_isready" in json.dumps(pg.get("healthcheck", {}).get("test", "")), "postgres healthcheck with pg_isready")
    c.expect((ctl.get("depends_on") or {}).get("postgres", {}).get("condition") == "service_healthy",
             "controller depends_on postgres: service_healthy")
    # ${VAR:-default} / ${VAR:?message} -> __VAR__, so that URLs can be parsed
    cenv = {k: re.sub(r"\$\{([A-Z_][A-Z0-9_]*)[^}]*\}", r"__\1__", v)
            for k, v in env_map(ctl.get("environment")).items()}
    c.expect(cenv.get("LANGUARD_LISTEN") == "0.0.0.0:50051", "controller LANGUARD_LISTEN=0.0.0.0:50051")
    db = urlsplit(cenv.get("LANGUARD_DATABASE_URL", ""))
    c.expect(db.scheme in {"postgres", "postgresql"}, "controller LANGUARD_DATABASE_URL is postgres://")
    c.expect(db.hostname in svcs, f"database host {db.hostname!r} is a compose service")
    c.expect(db.path.lstrip("/") == pgenv.get("POSTGRES_DB"), "database name = POSTGRES_DB")
    c.expect(db.username == pgenv.get("POSTGRES_USER"), "database user = POSTGRES_USER")
    c.expect(db.password == "__POSTGRES_PASSWORD__", "database password from ${POSTGRES_PASSWORD}")
    c.expect(pgenv.get("POSTGRES_PASSWORD", "").startswith("${POSTGRES_PASSWORD"), "postgres password from ${POSTGRES_PASSWORD}")
    # LANGUARD_ADMIN_PASSWORD from an env file that ships as <file>.example
    envfiles = ctl.get("env_file") or []
    envfiles = [envfiles] if isinstance(envfiles, str) else [e if isinstance(e, str) else e["path"] for e in envfiles]
    c.expect(envfiles, "controller env_file")
    for ef in envfiles:
        ex = compose_path.parent / (ef + ".example")
        if c.expect(ex.is_file(), f"{ef}.example missing"):
            c.expect("LANGUARD_ADMIN_PASSWORD=" in ex.read_text(), f"{ex.name} sets LANGUARD_ADMIN_PASSWORD")
    c.expect("LANGUARD_ADMIN_PASSWORD" not in cenv, "admin password only via the env file")
    # ports: published container port = listen port = EXPOSE
    port = listen_port(cenv.get("LANGUARD_LISTEN", ":0"))
    published = {int(str(p).split(":")[-1].split("/")[0]) for p in ctl.get("ports", [])}
    c.expect(port in published, f"controller publishes its listen port {port}")
    c.expect(port in EXPOSED.get("controller", set()), f"listen port {port} is EXPOSEd by controller.Dockerfile")
    # images and builds
    for name, crate in (("controller", "controller"), ("agent", "agent")):
        s = svcs.get(name, {})
        c.expect(str(s.get("image", "")).startswith(f"languard-{crate}:"), f"{name} image languard-{crate}:<tag>")
        b = s.get("build", {})
        ctx = (compose_path.parent / b.get("context", ".")).resolve()
        c.expect(ctx == REPO.resolve(), f"{name} build context is the repository root")
        c.expect((ctx / b.get("dockerfile", "")).resolve() == (DEPLOY / "docker" / f"{crate}.Dockerfile").resolve(),
                 f"{name} builds deploy/docker/{crate}.Dockerfile")
    # the agent
    aenv = env_map(ag.get("environment"))
    cu = urlsplit(aenv.get("LANGUARD_CONTROLLER_URL", ""))
    c.expect(cu.hostname == "controller" and cu.port == port,
             f"agent LANGUARD_CONTROLLER_URL points at controller:{port}")
    c.expect(aenv.get("LANGUARD_NODE_TOKEN", "").startswith("${LANGUARD_NODE_TOKEN"), "agent token from ${LANGUARD_NODE_TOKEN}")
    c.expect((ag.get("depends_on") or {}).get("controller", {}).get("condition") == "service_healthy",
             "agent depends_on controller: service_healthy")
    c.expect("controller" in HEALTHCHECKED, "service_healthy needs the controller image's HEALTHCHECK")
    c.expect(any(str(v).split(":")[1].startswith("/var/lib/languard") for v in ag.get("volumes", [])
                 if isinstance(v, str) and ":" in v), "agent state volume at /var/lib/languard")
    # named volumes declared
    declared = set((comp.get("volumes") or {}).keys())
    for name, s in svcs.items():
        for v in s.get("volumes", []) or []:
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src and not src.startswith((".", "/", "~")):
                c.expect(src in declared, f"{name}: volume {src} not declared")
    # every ${VAR} is documented in env.example
    env_example = (compose_path.parent / "env.example")
    documented = env_example.read_text() if env_example.is_file() else ""
    for var in sorted(set(ENV_INTERP.findall(compose_path.read_text()))):
        c.expect(re.search(rf"^#?\s*{var}=", documented, re.M), f"${{{var}}} not documented in env.example")

# ---------------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------------

K8S = DEPLOY / "k8s"
kust_path = K8S / "kustomization.yaml"
K8S_OBJS: list[dict] = []
with Check("k8s: kustomization.yaml") as c:
    kust = YAML_DOCS[kust_path][0]
    c.expect(kust.get("kind") == "Kustomization", "kind Kustomization")
    for r in kust.get("resources", []):
        p = K8S / r
        if c.expect(p.is_file(), f"resource {r} missing"):
            K8S_OBJS.extend(d for d in YAML_DOCS.get(p, []) if isinstance(d, dict))
    listed = {(K8S / r).resolve() for r in kust.get("resources", [])}
    for p in K8S.glob("*.yaml"):
        if p.name != "kustomization.yaml":
            c.expect(p.resolve() in listed, f"{p.name} is not listed in resources")
    GENERATED: dict[str, set[str]] = {}
    for g in kust.get("secretGenerator", []):
        keys: set[str] = set()
        for e in g.get("envs", []):
            ex = K8S / (e + ".example")
            if c.expect(ex.is_file(), f"{e}.example missing (the real file is git-ignored)"):
                keys |= {l.split("=", 1)[0] for l in ex.read_text().splitlines() if "=" in l and not l.startswith("#")}
            c.expect(re.search(r"^secrets/\*\.env$|^\*\.env$", (K8S / ".gitignore").read_text(), re.M)
                     if (K8S / ".gitignore").is_file() else False, f"{e} is git-ignored")
        GENERATED[g["name"]] = keys
    c.expect(kust.get("namespace") == "languard", "namespace: languard")


def objs(kind: str) -> list[dict]:
    return [o for o in K8S_OBJS if o.get("kind") == kind]


def by_name(kind: str, name: str) -> dict | None:
    return next((o for o in objs(kind) if o["metadata"]["name"] == name), None)


with Check("k8s: expected kinds") as c:
    kinds = {o.get("kind") for o in K8S_OBJS}
    c.expect({"Namespace", "ConfigMap", "Deployment", "Service"} <= kinds, f"kinds {sorted(kinds)}")
    c.expect("StatefulSet" in kinds or "database-url" in GENERATED.get("languard-controller-secrets", set()),
             "PostgreSQL StatefulSet, or a database-url secret (bring your own)")
    for o in K8S_OBJS:
        if o.get("kind") != "Namespace":
            c.expect(o["metadata"].get("namespace") == "languard", f"{o['kind']}/{o['metadata']['name']} namespace")


def container_ports(pod: dict) -> dict:
    out = {}
    for ct in pod["containers"]:
        for p in ct.get("ports", []):
            out[p["containerPort"]] = p
            if "name" in p:
                out[p["name"]] = p
    return out


def check_pod(c: Check, what: str, pod: dict, claims: list | None = None) -> None:
    psc = pod.get("securityContext", {})
    c.expect(psc.get("runAsNonRoot") is True, f"{what}: pod runAsNonRoot")
    c.expect(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: seccomp RuntimeDefault")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    vols.update({t["metadata"]["name"]: {"persistentVolumeClaim": {}} for t in claims or []})
    for ct in pod["containers"]:
        sc = ct.get("securityContext", {})
        c.expect(sc.get("readOnlyRootFilesystem") is True, f"{what}: readOnlyRootFilesystem")
        c.expect(sc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation false")
        c.expect("ALL" in sc.get("capabilities", {}).get("drop", []), f"{what}: drop ALL capabilities")
        res = ct.get("resources", {})
        c.expect(res.get("requests") and res.get("limits"), f"{what}: resource requests and limits")
        c.expect(ct.get("readinessProbe") and ct.get("livenessProbe"), f"{what}: readiness and liveness probes")
        ports = container_ports(pod)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            pr = ct.get(probe)
            if not pr:
                continue
            for kind in ("grpc", "httpGet", "tcpSocket"):
                if kind in pr:
                    c.expect(pr[kind]["port"] in ports, f"{what}: {probe} port {pr[kind]['port']} is a container port")
        for m in ct.get("volumeMounts", []):
            c.expect(m["name"] in vols, f"{what}: mount {m['name']} has no volume")
        for e in ct.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                c.expect(ref["key"] in GENERATED.get(ref["name"], set()),
                         f"{what}: secret {ref['name']} key {ref['key']} is not generated")


with Check("k8s: controller Deployment") as c:
    dep = by_name("Deployment", "languard-controller")
    if c.expect(dep, "Deployment languard-controller missing"):
        spec = dep["spec"]
        c.expect(spec.get("replicas") == 1, "replicas: 1 (agents hold their stream to one controller)")
        c.expect(spec.get("strategy", {}).get("type") == "Recreate", "strategy Recreate (never two controllers)")
        pod = spec["template"]["spec"]
        check_pod(c, "controller", pod)
        ct = pod["containers"][0]
        c.expect(str(ct.get("image", "")).startswith("languard-controller"), "image languard-controller")
        probes = [ct.get("readinessProbe", {}), ct.get("livenessProbe", {})]
        c.expect(any("grpc" in p or p.get("httpGet", {}).get("path") == "/healthz" for p in probes),
                 "probes use gRPC health or /healthz")
        envs = {e["name"] for e in ct.get("env", [])}
        for v in ("LANGUARD_ADMIN_PASSWORD", "LANGUARD_JWT_SECRET", "LANGUARD_DATABASE_URL"):
            c.expect(v in envs, f"{v} from the Secret")
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["mountPath"]: m["name"] for m in ct.get("volumeMounts", [])}
        cm_vol = vols.get(mounts.get("/etc/languard", ""), {})
        cm = by_name("ConfigMap", cm_vol.get("configMap", {}).get("name", ""))
        if c.expect(cm and "controller.toml" in cm.get("data", {}), "ConfigMap with controller.toml at /etc/languard"):
            conf = tomllib.loads(cm["data"]["controller.toml"])
            args = ct.get("args", []) + ct.get("command", [])
            c.expect("/etc/languard/controller.toml" in args, "--config /etc/languard/controller.toml")
            port = listen_port(conf["listen"])
            c.expect(port in container_ports(pod), f"listen port {port} is the container port")
            data_dir = conf["data_dir"]
            mount = next((mp for mp in mounts if data_dir == mp or data_dir.startswith(mp + "/")), None)
            if c.expect(mount, f"data_dir {data_dir} is on a volume"):
                v = vols.get(mounts[mount], {})
                c.expect("emptyDir" in v or "persistentVolumeClaim" in v, "data volume is emptyDir or PVC")
                c.expect(data_dir != mount, "data_dir is a subdirectory of the mount (the controller chmods it 0700)")
            svc = by_name("Service", "languard-controller")
            if c.expect(svc, "Service languard-controller"):
                sel = svc["spec"].get("selector", {})
                labels = spec["template"]["metadata"].get("labels", {})
                c.expect(sel and all(labels.get(k) == v for k, v in sel.items()), "Service selector matches the pods")
                sp = svc["spec"]["ports"]
                c.expect(any(p["port"] == port for p in sp), f"Service port {port}")
                for p in sp:
                    tp = p.get("targetPort", p["port"])
                    cp = container_ports(pod).get(tp)
                    c.expect(cp is not None and cp["containerPort"] == port,
                             f"Service targetPort {tp} is container port {port}")

if objs("StatefulSet"):
    with Check("k8s: PostgreSQL StatefulSet") as c:
        sts = by_name("StatefulSet", "languard-postgres")
        if c.expect(sts, "StatefulSet languard-postgres"):
            spec = sts["spec"]
            c.expect(spec.get("replicas") == 1, "replicas 1")
            c.expect(spec.get("volumeClaimTemplates"), "a PVC (volumeClaimTemplates)")
            pod = spec["template"]["spec"]
            check_pod(c, "postgres", pod, spec.get("volumeClaimTemplates"))
            c.expect(str(pod["containers"][0].get("image", "")).startswith("postgres:16"), "image postgres:16")
            svc = by_name("Service", spec.get("serviceName", ""))
            if c.expect(svc, f"governing Service {spec.get('serviceName')}"):
                pgport = svc["spec"]["ports"][0]["port"]
                ex = K8S / "secrets" / "controller.env.example"
                url = next((l.split("=", 1)[1] for l in ex.read_text().splitlines() if l.startswith("database-url=")), "")
                u = urlsplit(url)
                c.expect(u.hostname == svc["metadata"]["name"] and u.port == pgport,
                         f"database-url example points at {svc['metadata']['name']}:{pgport}")
                env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
                c.expect(u.path.lstrip("/") == env.get("POSTGRES_DB") and u.username == env.get("POSTGRES_USER"),
                         "database-url example matches POSTGRES_DB / POSTGRES_USER")

with Check("k8s: README says the agent runs on game hosts, not in Kubernetes") as c:
    readme = (K8S / "README.md")
    c.expect(readme.is_file() and "game host" in readme.read_text(), "deploy/k8s/README.md")

built = os.environ.get("K8S_BUILT")
if built:
    with Check("k8s: kustomize output wires the generated secrets") as c:
        out = [d for d in yaml.safe_load_all(Path(built).read_text()) if d]
        secrets = {d["metadata"]["name"] for d in out if d["kind"] == "Secret"}
        for d in out:
            for ct in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                for e in ct.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        c.expect(ref["name"] in secrets, f"{ref['name']} not generated")

# ---------------------------------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------------------------------

with Check("deploy/README.md indexes every file under deploy/") as c:
    readme = (DEPLOY / "README.md").read_text() if (DEPLOY / "README.md").is_file() else ""
    c.expect(readme, "deploy/README.md missing")
    for p in sorted(DEPLOY.rglob("*")):
        if p.is_file() and p.name != "README.md" and "__pycache__" not in p.parts:
            r = rel(p)
            ignored = p.name.endswith(".env") and not p.name.endswith(".example")  # local secrets
            ignored |= p.parent.name == "docker" and p.name == ".env"
            if not ignored:
                c.expect(r in readme, f"{r} is not mentioned")

print()
if FAILED:
    print(f"{len(FAILED)} check(s) failed: " + ", ".join(FAILED))
    sys.exit(1)
print("all structural checks passed")
