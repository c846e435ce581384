#!/usr/bin/env python3
"""Regenerates the deployment configuration files from deploy/*.example.toml.

    python3 deploy/sync-configs.py          # rewrite the copies
    python3 deploy/sync-configs.py --check  # exit 1 if a copy is out of date (writes nothing)

Each copy is the example word for word, plus a short header, with the few values the deployment
changes: such a value is preceded by "# Default: <key> = <example value>" and a reason. Run this after
editing an example (or the table below), then deploy/validate.sh.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
KEY_LINE = re.compile(r"^(#\s*)?([a-z][a-z0-9_]*) = (.*)$")

CONVENTION = (
    'Values that differ from the default are preceded by a "# Default:" line; everything else is the '
    "default, word for word as in deploy/{example}."
)

# target -> (example, header, {key: (value as TOML, reason)})
COPIES: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "systemd/controller.toml": (
        "controller.example.toml",
        "This copy: the systemd install (/etc/languard/controller.toml, see deploy/systemd/INSTALL.md). "
        + CONVENTION
        + " Secrets (database_url with a password, jwt_secret) go in /etc/languard/controller.env as "
        "LANGUARD_* variables, not here.",
        {
            "listen": ('"0.0.0.0:50051"', "Here: every interface, as agents dial in from other hosts."),
            "data_dir": ('"/var/lib/languard/controller"', "Here: the unit's StateDirectory."),
        },
    ),
    "systemd/agent.toml": (
        "agent.example.toml",
        "This copy: the systemd install (/etc/languard/agent.toml, see deploy/systemd/INSTALL.md). "
        + CONVENTION
        + " The node token is not set here: languard-agent.service passes --node-token-file with the "
        "systemd credential loaded from /etc/languard/agent-node-token.",
        {
            "controller_url": (
                '"http://languard-controller:50051"',
                "Here: EDIT to your controller's address; use https:// once the controller has TLS.",
            ),
            "state_dir": ('"/var/lib/languard/agent"', "Here: the unit's StateDirectory."),
        },
    ),
    "docker/controller.toml": (
        "controller.example.toml",
        "This copy: the container image (/etc/languard/controller.toml in languard-controller images, "
        "see deploy/docker/). "
        + CONVENTION
        + " Secrets come from LANGUARD_* environment variables (compose.yaml, env files), never from "
        "this file.",
        {
            "listen": (
                '"0.0.0.0:50051"',
                "Here: every interface of the container (publishing the port decides who reaches it).",
            ),
            "data_dir": ('"/var/lib/languard/data"', "Here: inside the image's volume /var/lib/languard."),
        },
    ),
    "docker/agent.toml": (
        "agent.example.toml",
        "This copy: the container image (/etc/languard/agent.toml in languard-agent images, see "
        "deploy/docker/). "
        + CONVENTION
        + " Set the controller and the token with LANGUARD_CONTROLLER_URL and LANGUARD_NODE_TOKEN "
        "(compose.yaml does).",
        {
            "state_dir": ('"/var/lib/languard/agent"', "Here: the image's volume."),
        },
    ),
    "k8s/configmap.yaml": (
        "controller.example.toml",
        "This copy: Kubernetes (the languard-controller-config ConfigMap, see deploy/k8s/). "
        + CONVENTION
        + " database_url and jwt_secret come from the Secret languard-controller-secrets as "
        "LANGUARD_DATABASE_URL and LANGUARD_JWT_SECRET (environment variables win over this file).",
        {
            "listen": (
                '"0.0.0.0:50051"',
                "Here: every interface of the pod (the Service decides who reaches it).",
            ),
            "data_dir": (
                '"/var/lib/languard/data"',
                "Here: a subdirectory of the emptyDir mounted at /var/lib/languard: the controller "
                "makes its data dir 0700, which it can only do to a directory it owns.",
            ),
        },
    ),
}

CONFIGMAP_HEAD = """\
# The controller's configuration file, mounted at /etc/languard/controller.toml. Every option with its
# default, copied from deploy/controller.example.toml by deploy/sync-configs.py (deploy/validate.sh
# checks that it does not diverge). Secrets are not here: they come from the Secret
# languard-controller-secrets as LANGUARD_* environment variables, which win over this file.
apiVersion: v1
kind: ConfigMap
metadata:
  name: languard-controller-config
  namespace: languard
  labels:
    app.kubernetes.io/name: languard-controller
    app.kubernetes.io/part-of: languard
data:
  controller.toml: |
"""


def derive(example: str, header: str, changes: dict[str, tuple[str, str]], example_name: str) -> str:
    lines = example.splitlines()
    # the header goes after the example's opening comment block
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        n += 1
    out = lines[:n] + ["#"]
    out += ["# " + w for w in textwrap.wrap(header.format(example=example_name), 98)]
    done = set()
    for line in lines[n:]:
        m = KEY_LINE.match(line)
        if m and m.group(2) in changes and m.group(2) not in done:
            key = m.group(2)
            value, why = changes[key]
            out.append(f"# Default: {key} = {m.group(3)}" if m.group(1) is None else "# Default: unset")
            out += ["# " + w for w in textwrap.wrap(why, 98)]
            out.append(f"{key} = {value}")
            done.add(key)
        else:
            out.append(line)
    missing = set(changes) - done
    if missing:
        sys.exit(f"sync-configs: {sorted(missing)} not found in {example_name}")
    return "\n".join(out) + "\n"


def render(target: str) -> str:
    example_name, header, changes = COPIES[target]
    toml = derive((DEPLOY / example_name).read_text(), header, changes, example_name)
    if target.endswith(".yaml"):
        body = "".join(("    " + l if l else "") + "\n" for l in toml.splitlines())
        return CONFIGMAP_HEAD + body
    return toml


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for target in COPIES:
        path = DEPLOY / target
        want = render(target)
        if not path.is_file() or path.read_text() != want:
            stale.append(target)
            if not check:
                path.write_text(want)
    verb = "out of date" if check else "rewritten"
    for t in stale:
        print(f"{verb}: deploy/{t}")
    if not stale:
        print("sync-configs: every copy is up to date")
    return 1 if (check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
