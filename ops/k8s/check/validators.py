"""Schema validation: Kubernetes' JSON schemas (kubernetes-validate,
strict) and KEDA's (@kubernetes-models/keda, through keda.mjs and
TypeScript)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import importlib_resources
import jsonschema
import referencing

from semantic import name_of

KEDA_TYPES = {
    "ScaledObject": "IScaledObject",
    "ScaledJob": "IScaledJob",
    "TriggerAuthentication": "ITriggerAuthentication",
    "ClusterTriggerAuthentication": "IClusterTriggerAuthentication",
}


# ------------------------------------------------ Kubernetes JSON schemas

class Schemas:
    """kubernetes-validate's strict schemas, loaded once per version and kind
    (its validate() reloads the definitions for every object)."""

    def __init__(self):
        self.root = importlib_resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
        self.cache: dict = {}

    def validator(self, version: str, kind: str, api_version: str):
        key = (version, kind, api_version)
        if key not in self.cache:
            folder = self.root.joinpath(f"v{version}-local-strict")
            if not folder.is_dir():
                raise SystemExit(f"kubernetes-validate has no schemas for Kubernetes {version}")
            group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            path = folder.joinpath(f"{kind.lower()}-{group}.json")
            if not path.is_file():
                self.cache[key] = None
            else:
                schema = json.loads(path.read_text())
                defs = self.cache.get((version, "_definitions"))
                if defs is None:
                    defs = referencing.Resource.from_contents(json.loads(folder.joinpath("_definitions.json").read_text()))
                    self.cache[(version, "_definitions")] = defs
                registry = referencing.Registry().with_resources([("", referencing.Resource.from_contents(schema))])
                registry = defs @ registry
                self.cache[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self.cache[key]

    def check(self, objs, version):
        errs = []
        for o in objs:
            if o.get("apiVersion", "").split("/")[0].endswith("keda.sh"):
                continue
            v = self.validator(version, o.get("kind", ""), o.get("apiVersion", ""))
            if v is None:
                errs.append(f"{name_of(o)}: no schema for {o.get('apiVersion')} {o.get('kind')} in Kubernetes {version}")
                continue
            for e in sorted(v.iter_errors(o), key=lambda e: list(e.absolute_path)):
                path = "/".join(str(p) for p in e.absolute_path)
                errs.append(f"{name_of(o)} at /{path}: {e.message[:300]}")
        return errs


# ------------------------------------------------------------------ KEDA

def keda_check(cases: dict[str, list[dict]], node: str, npm_dir: Path) -> dict[str, list[str]]:
    """Runs keda.mjs (values) and tsc (unknown fields) once over every case's
    KEDA objects; returns each case's errors."""
    results = {case: [] for case in cases}
    items, lines, owner = [], ['import type { %s } from "@kubernetes-models/keda/keda.sh/v1alpha1/%s";' % (t, k)
                               for k, t in KEDA_TYPES.items()], {}
    for case, objs in cases.items():
        for o in objs:
            if not o.get("apiVersion", "").startswith("keda.sh/"):
                continue
            ident = f"o{len(items)}"
            items.append({"id": ident, "object": o})
            owner[ident] = (case, name_of(o))
            if o.get("kind") not in KEDA_TYPES:
                results[case].append(f"{name_of(o)}: kind not known to the KEDA check")
                continue
            start = len(lines) + 1
            body = json.dumps(o, indent=2).splitlines()
            lines.append(f"export const {ident}: {KEDA_TYPES[o['kind']]} = {body[0]}")
            lines += body[1:]
            lines[-1] += ";"
            owner[("lines", ident)] = (start, len(lines))
    with tempfile.TemporaryDirectory(dir=npm_dir, prefix="run-") as tmp:
        tmp = Path(tmp)
        shutil.copy(Path(__file__).with_name("keda.mjs"), tmp / "keda.mjs")
        (tmp / "objects.json").write_text(json.dumps(items))
        (tmp / "objects.ts").write_text("\n".join(lines) + "\n")
        (tmp / "tsconfig.json").write_text(json.dumps({
            "compilerOptions": {"strict": True, "noEmit": True, "module": "nodenext",
                                "moduleResolution": "nodenext", "skipLibCheck": True, "types": []},
            "files": ["objects.ts"]}))
        run = subprocess.run([node, str(tmp / "keda.mjs"), str(tmp / "objects.json")],
                             capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            raise SystemExit(f"keda.mjs failed:\n{run.stderr}")
        for ident, errors in json.loads(run.stdout).items():
            case, what = owner[ident]
            results[case] += [f"{what}: {e}" for e in errors]
        tsc = npm_dir / "node_modules" / "typescript" / "bin" / "tsc"
        run = subprocess.run([node, str(tsc), "-p", str(tmp / "tsconfig.json"), "--pretty", "false"],
                             capture_output=True, text=True, timeout=120)
        for line in run.stdout.splitlines():
            m = re.match(r"^(.*?)\((\d+),\d+\): error (TS\d+): (.*)$", line)
            if not m:
                continue
            lineno = int(m.group(2))
            ident = next((i["id"] for i in items
                          if ("lines", i["id"]) in owner and owner[("lines", i["id"])][0] <= lineno <= owner[("lines", i["id"])][1]), None)
            if ident is None:
                raise SystemExit(f"TypeScript check failed outside the objects: {line}")
            case, what = owner[ident]
            results[case].append(f"{what}: {m.group(4)}")
        if run.returncode != 0 and not any(results.values()):
            raise SystemExit(f"tsc failed:\n{run.stdout}\n{run.stderr}")
    return results
