"""Offline checks of voxq's Kubernetes manifests; run by ops/check-k8s.sh.

Renders every overlay and example under ops/k8s with kustomize, then checks
each render:

- schema: every built-in object against the Kubernetes JSON schemas of each
  target version, strict (unknown fields refused);
- keda: ScaledObjects and TriggerAuthentications against KEDA's models
  (values by their validators, unknown fields by TypeScript);
- the semantic checks in SEMANTIC (what a schema cannot say).

Then a self-test: each check must refuse a copy of the cpu render broken in
the way that check guards against, so a check that can no longer fail is
itself a failure.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import time
from pathlib import Path

import yaml

from breakages import breakages
from semantic import SEMANTIC
from validators import Schemas, keda_check

# Marks an error that is a check's own exception, which the self-test does
# not count as refusing a broken manifest.
CRASHED = "check crashed on this input: "


# --------------------------------------------------------------- running

def render(kustomize: str, directory: Path) -> list[dict]:
    run = subprocess.run([kustomize, "build", str(directory)], capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.strip())
    return [d for d in yaml.safe_load_all(run.stdout) if d]


def all_checks(objs, case, ctx, versions, keda_results) -> dict[str, list[str]]:
    out = {}
    for v in versions:
        out[f"schema {v}"] = ctx["schemas"].check(objs, v)
    out["keda"] = keda_results.get(case, [])
    for name, fn in SEMANTIC.items():
        try:
            out[name] = fn(objs, ctx)
        except Exception as e:  # a malformed object: report it, check the rest
            out[name] = [f"{CRASHED}{type(e).__name__}: {e}"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="ops/k8s")
    ap.add_argument("--kustomize", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--npm-dir", type=Path, required=True, help="folder holding node_modules")
    ap.add_argument("--versions", default="1.30.0,1.37.0", help="Kubernetes versions to validate against")
    ap.add_argument("--no-self-test", action="store_true")
    args = ap.parse_args()
    versions = [v.strip() for v in args.versions.split(",") if v.strip()]

    secret_keys = set()
    for line in (args.root / "secret.example.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            secret_keys.add(line.split("=", 1)[0].strip())
    ctx = {"schemas": Schemas(), "secret_keys": secret_keys}

    t0 = time.monotonic()
    dirs = sorted(p.parent for sub in ("overlays", "examples") for p in (args.root / sub).glob("*/kustomization.yaml"))
    cases, failed = {}, False
    for d in dirs:
        rel = str(d.relative_to(args.root))
        try:
            cases[rel] = render(args.kustomize, d)
        except RuntimeError as e:
            print(f"FAIL render {rel}:\n    {e}")
            failed = True
    print(f"rendered {len(cases)} kustomizations in {time.monotonic() - t0:.1f} s: "
          + ", ".join(f"{k} ({len(v)} objects)" for k, v in cases.items()))

    broken = {}
    if not args.no_self_test:
        base = cases.get("overlays/cpu")
        if base is None:
            print("FAIL self-test: overlays/cpu did not render")
            return 1
        for i, (check, what, mutate) in enumerate(breakages()):
            objs = copy.deepcopy(base)
            try:
                mutate(objs)
            except (KeyError, IndexError, StopIteration, TypeError, AttributeError) as e:
                print(f"FAIL self-test cannot make {what} (has overlays/cpu changed shape?): {type(e).__name__} {e}")
                failed = True
                continue
            broken[f"self-test {i}"] = (check, what, objs)

    t1 = time.monotonic()
    keda_results = keda_check({**cases, **{k: v[2] for k, v in broken.items()}}, args.node, args.npm_dir)
    print(f"KEDA models and TypeScript ran in {time.monotonic() - t1:.1f} s")

    for case, objs in cases.items():
        print(f"== {case}")
        for check, errs in all_checks(objs, case, ctx, versions, keda_results).items():
            print(f"  {'ok  ' if not errs else 'FAIL'} {check}")
            for e in errs:
                print(f"         {e}")
            failed |= bool(errs)

    if broken:
        print("== self-test: each check refuses a broken copy of overlays/cpu")
        for case, (check, what, objs) in broken.items():
            results = all_checks(objs, case, ctx, versions, keda_results)
            hits = [e for name, errs in results.items() if name == check or name.startswith(check + " ")
                    for e in errs if not e.startswith(CRASHED)]
            if hits:
                print(f"  ok   {check} refuses {what}: {hits[0][:160]}")
            else:
                print(f"  FAIL {check} accepted {what}")
                failed = True

    print(f"{'FAILED' if failed else 'all checks passed'} in {time.monotonic() - t0:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
