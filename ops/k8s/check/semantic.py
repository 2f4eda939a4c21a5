"""voxq's own checks of a rendered set of manifests: what no schema says.

Each check takes the render (a list of objects) and a context, and returns
its complaints; an empty list passes. check.py runs them all (SEMANTIC).
"""

from __future__ import annotations

import os
import re
import tomllib

SECRET_NAME = "voxq-secrets"
# Variables that hold credentials: only ever from the Secret.
SECRET_ENV = {"VOXQ_DATABASE_URL", "VOXQ_REDIS_URL", "VOXQ_AMQP_URL", "VOXQ_KEY_PEPPER", "VOXQ_JWT_SECRET"}
LANES = ("interactive", "bulk", "long")
DEFAULT_NAMESPACE = "voxq"
DEFAULT_SHUTDOWN_GRACE = 30
# After VOXQ_SHUTDOWN_GRACE the worker still hands its unfinished jobs back
# to the queue; Kubernetes must not kill it in the middle of that.
HANDBACK_MARGIN = 10


# --------------------------------------------------------------- helpers

def name_of(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def find(objs: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objs if o.get("kind") == kind and o["metadata"].get("name") == name), None)


def pod_specs(objs: list[dict]):
    """(object, pod spec, pod template metadata) for everything that runs pods."""
    for o in objs:
        kind, spec = o.get("kind"), o.get("spec") or {}
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            t = spec.get("template") or {}
            yield o, t.get("spec") or {}, t.get("metadata") or {}
        elif kind == "CronJob":
            t = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
            yield o, t.get("spec") or {}, t.get("metadata") or {}
        elif kind == "Pod":
            yield o, spec, o.get("metadata") or {}


def containers(pod: dict):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key) or []


def env_of(objs: list[dict], container: dict) -> dict:
    """The container's environment: literal values as strings, references
    as ("secret"|"configmap"|"field", name, key) tuples; envFrom ConfigMaps
    that are in the render are resolved (later entries win, as in Kubernetes)."""
    env: dict = {}
    for src in container.get("envFrom") or []:
        if "configMapRef" in src:
            cm = find(objs, "ConfigMap", src["configMapRef"]["name"])
            for k, v in ((cm or {}).get("data") or {}).items():
                env[src.get("prefix", "") + k] = v
    for e in container.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "valueFrom" in e:
            vf = e["valueFrom"]
            if "secretKeyRef" in vf:
                env[e["name"]] = ("secret", vf["secretKeyRef"].get("name"), vf["secretKeyRef"].get("key"))
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = find(objs, "ConfigMap", ref.get("name"))
                env[e["name"]] = ((cm or {}).get("data") or {}).get(ref.get("key"), ("configmap", ref.get("name"), ref.get("key")))
            else:
                env[e["name"]] = ("field", None, None)
        else:
            env[e["name"]] = ""
    return env


def labelled(o: dict, key: str, value: str) -> bool:
    return (o.get("metadata", {}).get("labels") or {}).get(key) == value


def workers(objs: list[dict]) -> list[dict]:
    return [o for o in objs if o.get("kind") == "Deployment" and labelled(o, "app.kubernetes.io/component", "worker")]


def main_container(deploy: dict) -> dict:
    cs = deploy["spec"]["template"]["spec"]["containers"]
    return next((c for c in cs if c["name"] in ("voxq-worker", "voxq-api")), cs[0])


def mounted_file(objs: list[dict], deploy: dict, container: dict, path: str) -> str | None:
    """The text of the ConfigMap key mounted at `path` in the container."""
    pod = deploy["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        mount = m["mountPath"].rstrip("/")
        vol = volumes.get(m["name"]) or {}
        if "configMap" not in vol:
            continue
        cm = find(objs, "ConfigMap", vol["configMap"].get("name"))
        data = (cm or {}).get("data") or {}
        if m.get("subPath") and path == mount:
            return data.get(m["subPath"])
        if os.path.dirname(path) == mount:
            base = os.path.basename(path)
            items = vol["configMap"].get("items")
            if items:
                key = next((i["key"] for i in items if i["path"] == base), None)
                return data.get(key) if key else None
            return data.get(base)
    return None


def worker_models(objs: list[dict], deploy: dict) -> tuple[list[dict], list[str]]:
    """The [[models]] of a worker's VOXQ_MODELS_FILE, and any problem finding them."""
    c = main_container(deploy)
    path = env_of(objs, c).get("VOXQ_MODELS_FILE")
    if not isinstance(path, str) or not path:
        return [], [f"{name_of(deploy)}: VOXQ_MODELS_FILE is not set to a path"]
    text = mounted_file(objs, deploy, c, path)
    if text is None:
        return [], [f"{name_of(deploy)}: VOXQ_MODELS_FILE {path} is not a ConfigMap key mounted in the container"]
    try:
        models = tomllib.loads(text).get("models") or []
    except tomllib.TOMLDecodeError as e:
        return [], [f"{name_of(deploy)}: models file {path}: {e}"]
    if not models:
        return [], [f"{name_of(deploy)}: models file {path} lists no [[models]]"]
    return models, []


def worker_queues(objs: list[dict], deploy: dict) -> tuple[set[str], list[str]]:
    models, problems = worker_models(objs, deploy)
    env = env_of(objs, main_container(deploy))
    ns = env.get("VOXQ_NAMESPACE", DEFAULT_NAMESPACE)
    lanes = env.get("VOXQ_LANES", ",".join(LANES))
    if not isinstance(ns, str) or not isinstance(lanes, str):
        return set(), problems + [f"{name_of(deploy)}: VOXQ_NAMESPACE and VOXQ_LANES must be literal values"]
    lanes = [l.strip() for l in lanes.split(",") if l.strip()]
    return {f"{ns}.jobs.{m.get('name')}.{lane}" for m in models for lane in lanes}, problems


def port_of_bind(bind: str) -> int | None:
    m = re.fullmatch(r"(.*):(\d+)", bind or "")
    return int(m.group(2)) if m else None


def container_port(c: dict, port) -> int | None:
    for p in c.get("ports") or []:
        if port in (p.get("name"), p.get("containerPort")):
            return p["containerPort"]
    return None


# ------------------------------------------------------- semantic checks

def check_worker_grace(objs, ctx):
    errs = []
    for d in workers(objs):
        env = env_of(objs, main_container(d))
        try:
            grace = int(env.get("VOXQ_SHUTDOWN_GRACE", DEFAULT_SHUTDOWN_GRACE))
        except (TypeError, ValueError):
            errs.append(f"{name_of(d)}: VOXQ_SHUTDOWN_GRACE must be a literal number of seconds")
            continue
        tgps = d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        if not isinstance(tgps, int) or tgps < grace + HANDBACK_MARGIN:
            errs.append(f"{name_of(d)}: terminationGracePeriodSeconds {tgps} must exceed VOXQ_SHUTDOWN_GRACE {grace} "
                        f"by at least {HANDBACK_MARGIN} s, or running jobs are killed before they are handed back")
    return errs


def check_pod_security(objs, ctx):
    errs = []
    for o, pod, _ in pod_specs(objs):
        psc = pod.get("securityContext") or {}
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag):
                errs.append(f"{name_of(o)}: {flag} is set")
        for c in containers(pod):
            sc = c.get("securityContext") or {}
            where = f"{name_of(o)} container {c['name']}"
            if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                errs.append(f"{where}: runAsNonRoot is not true")
            if sc.get("runAsUser", psc.get("runAsUser")) == 0:
                errs.append(f"{where}: runs as uid 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                errs.append(f"{where}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                errs.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                errs.append(f"{where}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                errs.append(f"{where}: capabilities do not drop ALL")
            if (sc.get("capabilities") or {}).get("add"):
                errs.append(f"{where}: adds capabilities")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                errs.append(f"{where}: seccompProfile is not RuntimeDefault")
    return errs


def check_no_inline_secrets(objs, ctx):
    errs = []
    for o in objs:
        if o.get("kind") == "Secret":
            errs.append(f"{name_of(o)}: Secrets are created out of band "
                        f"(kubectl create secret generic {SECRET_NAME} --from-env-file=...), never rendered")
        if o.get("kind") == "ConfigMap":
            for k in (o.get("data") or {}):
                if k in SECRET_ENV:
                    errs.append(f"{name_of(o)}: holds {k}, which belongs in the Secret")
    for o, pod, _ in pod_specs(objs):
        for c in containers(pod):
            for e in c.get("env") or []:
                if e["name"] in SECRET_ENV and "value" in e:
                    errs.append(f"{name_of(o)} container {c['name']}: {e['name']} is inlined, not a secretKeyRef")
    return errs


def check_secret_keys(objs, ctx):
    """Every key of voxq-secrets that the manifests read is documented in
    secret.example.env, so `--from-env-file` of a filled copy has them all."""
    documented = ctx["secret_keys"]
    errs = []

    def ref(where, name, key):
        if name != SECRET_NAME:
            errs.append(f"{where}: reads Secret {name!r}; voxq's manifests read only {SECRET_NAME}")
        elif key not in documented:
            errs.append(f"{where}: key {key} of {SECRET_NAME} is not in secret.example.env")

    for o, pod, _ in pod_specs(objs):
        for c in containers(pod):
            for e in c.get("env") or []:
                skr = (e.get("valueFrom") or {}).get("secretKeyRef")
                if skr:
                    ref(f"{name_of(o)} {e['name']}", skr.get("name"), skr.get("key"))
            for src in c.get("envFrom") or []:
                if "secretRef" in src:
                    errs.append(f"{name_of(o)} container {c['name']}: envFrom a whole Secret; "
                                "name each variable (least privilege)")
    for o in objs:
        if o.get("kind") in ("TriggerAuthentication", "ClusterTriggerAuthentication"):
            for r in (o.get("spec") or {}).get("secretTargetRef") or []:
                ref(f"{name_of(o)} {r.get('parameter')}", r.get("name"), r.get("key"))
    return errs


def decoy_queues(objs, ns_set, models):
    """Queues a model's trigger must not count: other models', the dead
    letters and retries, near-miss names, another namespace's."""
    decoys = set()
    for ns in ns_set:
        decoys |= {f"{ns}.jobs.dead", f"{ns}.jobs.dead.sweep", f"{ns}.jobs.retry.0", f"{ns}.jobs.retry.3"}
        for m in models:
            for lane in LANES:
                decoys |= {f"{ns}.jobs.{m}x.{lane}", f"{ns}.jobs.{m}-cpp.{lane}", f"{ns}.jobs.x{m}.{lane}",
                           f"{ns}.jobs.{m}.{lane}x", f"x{ns}.jobs.{m}.{lane}", f"{ns}x.jobs.{m}.{lane}"}
    for d in workers(objs):
        decoys |= worker_queues(objs, d)[0]
    return decoys


def check_queues_match_models(objs, ctx):
    """Each worker Deployment has one ScaledObject whose RabbitMQ triggers
    count exactly its models' queues (<namespace>.jobs.<model>.<lane>)."""
    errs = []
    scaled = {}
    auths = {o["metadata"]["name"] for o in objs if o.get("kind") == "TriggerAuthentication"}
    for so in (o for o in objs if o.get("kind") == "ScaledObject"):
        ref = so["spec"].get("scaleTargetRef") or {}
        target = find(objs, ref.get("kind", "Deployment"), ref.get("name"))
        if target is None:
            errs.append(f"{name_of(so)}: scaleTargetRef {ref.get('name')} is not in the render")
            continue
        scaled.setdefault(target["metadata"]["name"], []).append(so)
        expected, problems = worker_queues(objs, target)
        errs += problems
        if not expected:
            continue
        models = {q.split(".jobs.", 1)[1].rsplit(".", 1)[0] for q in expected}
        namespaces = {q.split(".jobs.", 1)[0] for q in expected}
        candidates = expected | (decoy_queues(objs, namespaces, models) - expected)
        counted = set()
        for i, t in enumerate(so["spec"].get("triggers") or []):
            if t.get("type") != "rabbitmq":
                continue
            md = t.get("metadata") or {}
            where = f"{name_of(so)} trigger {i}"
            auth = (t.get("authenticationRef") or {}).get("name")
            if auth not in auths:
                errs.append(f"{where}: authenticationRef {auth!r} is not a TriggerAuthentication in the render")
            if md.get("mode", "QueueLength") != "QueueLength":
                errs.append(f"{where}: mode must be QueueLength (messages waiting), not {md.get('mode')}")
            queue = md.get("queueName", "")
            if md.get("useRegex") == "true":
                if md.get("protocol") != "http":
                    errs.append(f"{where}: useRegex needs protocol http (RabbitMQ's management API)")
                if md.get("operation", "sum") != "sum":
                    errs.append(f"{where}: operation {md.get('operation')}: the lanes' lengths must be summed")
                try:
                    # The management API searches (re:run), it does not anchor.
                    rx = re.compile(queue)
                except re.error as e:
                    errs.append(f"{where}: queueName is not a regular expression: {e}")
                    continue
                matched = {q for q in candidates if rx.search(q)}
            else:
                matched = {queue}
            for q in sorted(matched - expected):
                errs.append(f"{where}: counts queue {q}, which is not one of {target['metadata']['name']}'s models' queues")
            counted |= matched
        for q in sorted(expected - counted):
            errs.append(f"{name_of(so)}: no trigger counts queue {q} (models file of {target['metadata']['name']})")
    for d in workers(objs):
        n = len(scaled.get(d["metadata"]["name"], []))
        if n != 1:
            errs.append(f"{name_of(d)}: has {n} ScaledObjects, needs exactly one")
    return errs


def check_models_on_volumes(objs, ctx):
    """Model paths (and the VAD model) point into a volume of the worker."""
    errs = []
    for d in workers(objs):
        c = main_container(d)
        mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts") or []]
        models, problems = worker_models(objs, d)
        errs += problems
        paths = [(f"model {m.get('name')}", m.get("path", "")) for m in models]
        vad = env_of(objs, c).get("VOXQ_VAD_MODEL")
        if isinstance(vad, str):
            paths.append(("VOXQ_VAD_MODEL", vad))
        for what, p in paths:
            if not any(str(p).startswith(m) for m in mounts):
                errs.append(f"{name_of(d)}: {what} path {p!r} is not on a mounted volume ({', '.join(mounts)})")
    return errs


def check_standby_models(objs, ctx):
    """A worker KEDA may scale to zero has its models in the API's
    VOXQ_STANDBY_MODELS, or the API refuses their jobs while it sleeps."""
    errs = []
    apis = [o for o in objs if o.get("kind") == "Deployment" and labelled(o, "app.kubernetes.io/component", "api")]
    for so in (o for o in objs if o.get("kind") == "ScaledObject"):
        if so["spec"].get("minReplicaCount", 0) != 0:  # KEDA's default is 0
            continue
        target = find(objs, "Deployment", (so["spec"].get("scaleTargetRef") or {}).get("name"))
        if target is None:
            continue
        models, _ = worker_models(objs, target)
        for api in apis:
            standby = env_of(objs, main_container(api)).get("VOXQ_STANDBY_MODELS", "")
            names = {e.split("=", 1)[0].strip() for e in str(standby).split(",") if "=" in e}
            for m in models:
                if m.get("name") not in names:
                    errs.append(f"{name_of(so)} may scale to zero, but {name_of(api)}'s VOXQ_STANDBY_MODELS "
                                f"does not list {m.get('name')}: its jobs would be refused meanwhile")
    return errs


def check_images_pinned(objs, ctx):
    errs = []
    for o, pod, _ in pod_specs(objs):
        for c in containers(pod):
            image = c.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if "@sha256:" in image:
                continue
            if ":" not in last or last.endswith(":latest"):
                errs.append(f"{name_of(o)} container {c['name']}: image {image!r} has no pinned tag "
                            "(set newTag in the overlay's images:)")
    return errs


def check_metrics_scraping(objs, ctx):
    """prometheus.io/port names the port the process really serves metrics
    on, bound to all interfaces."""
    errs = []
    for o, pod, meta in pod_specs(objs):
        ann = meta.get("annotations") or {}
        if ann.get("prometheus.io/scrape") != "true":
            continue
        try:
            port = int(ann.get("prometheus.io/port", ""))
        except ValueError:
            errs.append(f"{name_of(o)}: prometheus.io/port {ann.get('prometheus.io/port')!r} is not a number")
            continue
        serving = []
        for c in pod.get("containers") or []:
            for k, v in env_of(objs, c).items():
                if k.endswith("_METRICS_BIND") and isinstance(v, str):
                    serving.append((c, v))
        if not any(port_of_bind(v) == port and container_port(c, port) for c, v in serving):
            errs.append(f"{name_of(o)}: prometheus.io/port {port} is not a declared container port "
                        f"with a matching *_METRICS_BIND ({[v for _, v in serving]})")
        for c, v in serving:
            if v.startswith("127.") or v.startswith("[::1]") or v.startswith("localhost"):
                errs.append(f"{name_of(o)}: {v} is loopback; Prometheus cannot reach it")
    return errs


def selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        val, op = labels.get(e["key"]), e["operator"]
        if op == "In" and val not in e.get("values", []) or op == "NotIn" and val in e.get("values", []):
            return False
        if op == "Exists" and e["key"] not in labels or op == "DoesNotExist" and e["key"] in labels:
            return False
    return True


def check_network_policies(objs, ctx):
    """Every voxq pod is under a default-deny ingress policy, and no rule
    open to everyone exposes a metrics port."""
    errs = []
    policies = [o for o in objs if o.get("kind") == "NetworkPolicy"]
    deny = [p for p in policies if "Ingress" in (p["spec"].get("policyTypes") or []) and not p["spec"].get("ingress")]
    metrics_ports = set()
    for o, pod, meta in pod_specs(objs):
        labels = meta.get("labels") or {}
        if not any(selects(p["spec"].get("podSelector") or {}, labels) for p in deny):
            errs.append(f"{name_of(o)}: its pods are under no default-deny ingress NetworkPolicy")
        for c in pod.get("containers") or []:
            for k, v in env_of(objs, c).items():
                port = port_of_bind(v) if k.endswith("_METRICS_BIND") and isinstance(v, str) else None
                if port:
                    metrics_ports.add(port)
                    metrics_ports |= {p.get("name") for p in c.get("ports") or [] if p.get("containerPort") == port}
    for p in policies:
        for i, rule in enumerate(p["spec"].get("ingress") or []):
            if rule.get("from"):
                continue
            ports = rule.get("ports")
            if not ports:
                errs.append(f"{name_of(p)} ingress rule {i}: every port open to everyone")
            for port in ports or []:
                if port.get("port") in metrics_ports:
                    errs.append(f"{name_of(p)} ingress rule {i}: metrics port {port.get('port')} open to everyone")
    return errs


LIMIT_FIELDS = {"requests_per_day", "audio_seconds_per_day", "text_chars_per_day", "processing_seconds_per_day",
                "concurrent_jobs", "requests_per_minute", "burst"}


def check_api_settings(objs, ctx):
    """Production mode, migrations by the Job only (and that Job present),
    the workers' VOXQ_NAMESPACE, and a complete limits file."""
    errs = []
    apis = [o for o in objs if o.get("kind") == "Deployment" and labelled(o, "app.kubernetes.io/component", "api")]
    for api in apis:
        c = main_container(api)
        env = env_of(objs, c)
        if env.get("VOXQ_ENV") != "production":
            errs.append(f"{name_of(api)}: VOXQ_ENV is {env.get('VOXQ_ENV', 'unset')!r}, not production")
        if env.get("VOXQ_MIGRATE") != "false":
            errs.append(f"{name_of(api)}: VOXQ_MIGRATE must be \"false\" (the voxq-migrate Job migrates)")
        ns = env.get("VOXQ_NAMESPACE", DEFAULT_NAMESPACE)
        for w in workers(objs):
            wns = env_of(objs, main_container(w)).get("VOXQ_NAMESPACE", DEFAULT_NAMESPACE)
            if wns != ns:
                errs.append(f"{name_of(w)}: VOXQ_NAMESPACE {wns!r} differs from {name_of(api)}'s {ns!r}: "
                            "its queues would get no jobs")
        if isinstance(env.get("VOXQ_LIMITS_FILE"), str):
            text = mounted_file(objs, api, c, env["VOXQ_LIMITS_FILE"])
            try:
                tiers = tomllib.loads(text) if text is not None else None
            except tomllib.TOMLDecodeError as e:
                errs.append(f"{name_of(api)}: limits file: {e}")
                tiers = {}
            if tiers is None:
                errs.append(f"{name_of(api)}: VOXQ_LIMITS_FILE is not a ConfigMap key mounted in the container")
            for tier, fields in (tiers or {}).items():
                if tier not in ("free", "basic", "pro", "enterprise"):
                    errs.append(f"{name_of(api)}: limits file: unknown tier [{tier}]")
                elif missing := LIMIT_FIELDS - set(fields):
                    errs.append(f"{name_of(api)}: limits file: [{tier}] lacks {', '.join(sorted(missing))}")
    if apis and not any(o.get("kind") == "Job" and any(c.get("command") == ["voxq", "migrate"] for c in containers(pod))
                        for o, pod, _ in pod_specs(objs)):
        errs.append("no Job runs `voxq migrate`, and the API does not migrate (VOXQ_MIGRATE=false)")
    return errs


SEMANTIC = {
    "worker-grace": check_worker_grace,
    "pod-security": check_pod_security,
    "no-inline-secrets": check_no_inline_secrets,
    "secret-keys": check_secret_keys,
    "queues-match-models": check_queues_match_models,
    "models-on-volumes": check_models_on_volumes,
    "standby-models": check_standby_models,
    "images-pinned": check_images_pinned,
    "metrics-scraping": check_metrics_scraping,
    "network-policies": check_network_policies,
    "api-settings": check_api_settings,
}
