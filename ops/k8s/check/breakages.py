"""The self-test's breakages: for each check, a way to break a copy of the
cpu render that the check must refuse."""

from __future__ import annotations

from semantic import SECRET_NAME, containers, find, labelled, main_container, pod_specs

def set_env(container, name, value):
    for e in container.setdefault("env", []):
        if e["name"] == name:
            e.pop("valueFrom", None)
            e["value"] = value
            return
    container["env"].append({"name": name, "value": value})


def breakages():
    """(check, what is broken, mutation of a copy of the cpu render)."""

    def dep(objs, component):
        return next(o for o in objs if o.get("kind") == "Deployment" and labelled(o, "app.kubernetes.io/component", component))

    def scaled(objs):
        return next(o for o in objs if o.get("kind") == "ScaledObject")

    def worker_models_cm(objs):
        d = dep(objs, "worker")
        vol = next(v for v in d["spec"]["template"]["spec"]["volumes"] if "configMap" in v and "models" in v["name"])
        return find(objs, "ConfigMap", vol["configMap"]["name"])

    def api_env(objs, name):
        c = main_container(dep(objs, "api"))
        c["env"] = [e for e in c["env"] if e["name"] != name]

    return [
        ("schema", "an unknown field in a container",
         lambda o: main_container(dep(o, "api")).__setitem__("imagePullPolicyy", "Always")),
        ("schema", "a string where an integer belongs",
         lambda o: dep(o, "worker")["spec"]["template"]["spec"].__setitem__("terminationGracePeriodSeconds", "90")),
        ("keda", "an unknown field in a ScaledObject",
         lambda o: scaled(o)["spec"].__setitem__("minReplicas", 1)),
        ("keda", "an unknown field in a trigger",
         lambda o: scaled(o)["spec"]["triggers"][0].__setitem__("authRef", {"name": "x"})),
        ("keda", "a string where KEDA wants an integer",
         lambda o: scaled(o)["spec"].__setitem__("pollingInterval", "15")),
        ("worker-grace", "terminationGracePeriodSeconds below VOXQ_SHUTDOWN_GRACE",
         lambda o: dep(o, "worker")["spec"]["template"]["spec"].__setitem__("terminationGracePeriodSeconds", 30)),
        ("pod-security", "a writable root filesystem",
         lambda o: next(c for x, pod, _ in pod_specs(o) if x["kind"] == "Job" for c in containers(pod))
         ["securityContext"].__setitem__("readOnlyRootFilesystem", False)),
        ("pod-security", "runAsNonRoot dropped",
         lambda o: dep(o, "api")["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")),
        ("no-inline-secrets", "a Secret with data in the render",
         lambda o: o.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET_NAME},
                             "data": {"VOXQ_JWT_SECRET": "eA=="}})),
        ("no-inline-secrets", "a secret variable inlined",
         lambda o: set_env(main_container(dep(o, "api")), "VOXQ_JWT_SECRET", "x" * 40)),
        ("secret-keys", "a Secret key that secret.example.env lacks",
         lambda o: next(e for e in main_container(dep(o, "worker"))["env"] if e["name"] == "VOXQ_DATABASE_URL")
         ["valueFrom"]["secretKeyRef"].__setitem__("key", "VOXQ_DB_URL")),
        ("queues-match-models", "a lane missing from the regex",
         lambda o: scaled(o)["spec"]["triggers"][0]["metadata"].__setitem__(
             "queueName", r"^voxq\.jobs\.whisper-tiny\.en\.(interactive|bulk)$")),
        ("queues-match-models", "a regex that also counts another model",
         lambda o: scaled(o)["spec"]["triggers"][0]["metadata"].__setitem__(
             "queueName", r"^voxq\.jobs\.whisper-tiny\.en.*$")),
        ("queues-match-models", "the models file renamed the model",
         lambda o: worker_models_cm(o)["data"].__setitem__(
             "models.toml", worker_models_cm(o)["data"]["models.toml"].replace('"whisper-tiny.en"', '"whisper-base"'))),
        ("queues-match-models", "another VOXQ_NAMESPACE",
         lambda o: find(o, "ConfigMap", next(s["configMapRef"]["name"] for s in main_container(dep(o, "worker"))["envFrom"]))
         ["data"].__setitem__("VOXQ_NAMESPACE", "staging")),
        ("models-on-volumes", "a model path outside the volumes",
         lambda o: worker_models_cm(o)["data"].__setitem__(
             "models.toml", worker_models_cm(o)["data"]["models.toml"].replace('"/models/', '"/model/'))),
        ("standby-models", "scale to zero without VOXQ_STANDBY_MODELS",
         lambda o: scaled(o)["spec"].__setitem__("minReplicaCount", 0)),
        ("images-pinned", "an image without a tag",
         lambda o: main_container(dep(o, "api")).__setitem__("image", "registry.example.com/voxq/voxq-api")),
        ("metrics-scraping", "prometheus.io/port on the wrong port",
         lambda o: dep(o, "worker")["spec"]["template"]["metadata"]["annotations"].__setitem__("prometheus.io/port", "9092")),
        ("network-policies", "the API's metrics port open to everyone",
         lambda o: find(o, "NetworkPolicy", "voxq-api-ingress")["spec"]["ingress"][0]["ports"].append(
             {"protocol": "TCP", "port": 9090})),
        ("network-policies", "no default-deny policy",
         lambda o: o.remove(find(o, "NetworkPolicy", "voxq-default-deny-ingress"))),
        ("api-settings", "the API migrating at start",
         lambda o: set_env(main_container(dep(o, "api")), "VOXQ_MIGRATE", "true")),
        ("api-settings", "development mode",
         lambda o: api_env(o, "VOXQ_ENV")),
        ("api-settings", "the API on another VOXQ_NAMESPACE than the workers",
         lambda o: set_env(main_container(dep(o, "api")), "VOXQ_NAMESPACE", "staging")),
        ("api-settings", "a limits tier missing a field",
         lambda o: next(c for c in o if c.get("kind") == "ConfigMap" and "limits.toml" in (c.get("data") or {}))
         ["data"].__setitem__("limits.toml", "[free]\nburst = 20\n")),
    ]
