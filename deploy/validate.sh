#!/usr/bin/env bash
# Validates everything under deploy/: YAML and TOML syntax, the configuration copies against the
# example configs, the systemd units (systemd-analyze verify when available, always a structural
# check), the Dockerfiles, the Kubernetes manifests (kustomize build when kubectl or kustomize is
# available, always a structural check), compose.yaml and the README index.
#
#   deploy/validate.sh            # from anywhere; exits non-zero on any failure
#
# Needs python3 >= 3.11 (tomllib) and PyYAML (installed with pip when missing). Installs nothing else:
# systemd-analyze and kubectl/kustomize are used only when they are already there. Runs in seconds.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEPLOY_DIR
failures=0
ran=()
skipped=()

note() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- python3 >= 3.11 with PyYAML -------------------------------------------------------------------
PY=""
for candidate in python3 python3.13 python3.12 python3.11; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    PY="$candidate"
    break
  fi
done
if [[ -z "$PY" ]]; then
  echo "FAIL python3 >= 3.11 (for tomllib) not found" >&2
  exit 1
fi
if ! "$PY" -c 'import yaml' 2>/dev/null; then
  note "installing PyYAML"
  "$PY" -m pip install --quiet pyyaml ||
    "$PY" -m pip install --quiet --user pyyaml ||
    { echo "FAIL cannot install PyYAML (python3 -m pip install pyyaml)" >&2; exit 1; }
fi

# --- systemd-analyze verify (optional) -------------------------------------------------------------
# verify resolves ExecStart binaries and needs the unit search path, so it runs against a scratch root
# holding stub binaries and a copy of the host's own units. It exits 0 on unknown keys or bad values
# (it only warns), so any output at all counts as a failure.
sysunits=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
  if [[ -f "$d/sysinit.target" ]]; then sysunits="$d"; break; fi
done
if command -v systemd-analyze >/dev/null 2>&1 && [[ -n "$sysunits" ]]; then
  note "systemd-analyze verify"
  root="$tmp/sdroot"
  mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
  cp -R "$sysunits" "$root/usr/lib/systemd/"
  units=()
  for unit in "$DEPLOY_DIR"/systemd/*.service; do
    name="$(basename "$unit")"
    cp "$unit" "$root/etc/systemd/system/$name"
    units+=("$name")
    # a stub for every absolute ExecStart binary
    sed -n 's/^ExecStart=[-@:+!]*\(\/[^ ]*\).*/\1/p' "$unit" | while read -r bin; do
      mkdir -p "$root$(dirname "$bin")"
      printf '#!/bin/sh\nexit 0\n' >"$root$bin"
      chmod 0755 "$root$bin"
    done
  done
  if out="$(systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>&1)" && [[ -z "$out" ]]; then
    echo "ok   systemd-analyze verify: ${units[*]}"
    ran+=("systemd-analyze verify")
  else
    fail "systemd-analyze verify:"
    printf '%s\n' "$out" | sed "s#$root##g" >&2
  fi
else
  skipped+=("systemd-analyze verify (systemd-analyze or the system's unit files not installed; the structural unit check still runs)")
fi

# --- kustomize build (optional) --------------------------------------------------------------------
# The secret generator's input files are git-ignored; the build uses the shipped *.example files.
kbuild=()
if command -v kustomize >/dev/null 2>&1; then
  kbuild=(kustomize build)
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  kbuild=(kubectl kustomize)
fi
if ((${#kbuild[@]})); then
  note "${kbuild[*]} deploy/k8s"
  cp -r "$DEPLOY_DIR/k8s" "$tmp/k8s"
  for ex in "$tmp"/k8s/secrets/*.example; do
    [[ -e "$ex" ]] && cp "$ex" "${ex%.example}"
  done
  if "${kbuild[@]}" "$tmp/k8s" >"$tmp/k8s-built.yaml" 2>"$tmp/k8s-built.err"; then
    echo "ok   ${kbuild[*]}: $(grep -c '^kind:' "$tmp/k8s-built.yaml") objects"
    ran+=("${kbuild[*]}")
    export K8S_BUILT="$tmp/k8s-built.yaml"
  else
    fail "${kbuild[*]} deploy/k8s:"
    cat "$tmp/k8s-built.err" >&2
  fi
else
  skipped+=("kustomize build (neither kustomize nor kubectl installed; the structural check still runs)")
fi

# --- shell syntax ----------------------------------------------------------------------------------
note "bash -n"
while IFS= read -r -d '' sh; do
  if bash -n "$sh"; then echo "ok   bash -n ${sh#"$DEPLOY_DIR"/}"; else fail "bash -n $sh"; fi
done < <(find "$DEPLOY_DIR" -name '*.sh' -type f -print0)
ran+=("bash -n")

# --- the configuration copies are what sync-configs.py generates -------------------------------------
note "sync-configs.py --check"
if "$PY" "$DEPLOY_DIR/sync-configs.py" --check; then
  ran+=("sync-configs.py --check")
else
  fail "configuration copies differ from what deploy/sync-configs.py generates (run it, or edit its table)"
fi

# --- everything else (python) ----------------------------------------------------------------------
note "structural checks (python $("$PY" -c 'import platform; print(platform.python_version())'))"
if "$PY" "$DEPLOY_DIR/validate.py"; then
  ran+=("python structural checks")
else
  failures=$((failures + 1))
fi

echo
printf 'checks run:     %s\n' "$(IFS=';'; echo "${ran[*]}" | sed 's/;/; /g')"
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "checks skipped: $s"; done
if ((failures)); then
  echo "deploy/validate.sh: $failures check group(s) FAILED" >&2
  exit 1
fi
echo "deploy/validate.sh: all checks passed"
