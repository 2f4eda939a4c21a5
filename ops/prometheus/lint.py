#!/usr/bin/env python3
"""voxq's checks of its Prometheus rules and Grafana dashboards, beyond
what promtool does by itself (ops/check-observability.sh runs both).

    lint.py check --prometheus ops/prometheus --grafana ops/grafana \
        --local-config OUT.yml --dashboard-rules OUT.yml
        Checks, and writes two files for promtool: prometheus.yml with
        rule_files pointing at the checkout instead of the container's
        /etc/prometheus/rules/, and every dashboard query (template
        variables replaced by valid values) as a recording rule, so that
        `promtool check rules` parses each one.

    lint.py compare-scrape [--require-all] SCRAPE...
        Compares /metrics scrapes (Prometheus text format) with
        metric-names.txt: every voxq_ family declared with the same type,
        every sample's labels and enumerated label values allowed; with
        --require-all, also every declared family of that process present.

The checks: every metric a rule, a test series or a dashboard selects is
in metric-names.txt (histogram suffixes and `le` included), with labels it
has and label values it takes; every alert has a severity, a summary, a
description and a `for`, and a promtool test where it fires and one where
it does not; every recording rule is tested; dashboards are valid JSON
with unique uids and panel ids, a layout inside Grafana's 24 columns, the
data source by uid, no undefined template variable and a query in every
panel. Needs Python 3 and PyYAML (Debian: python3-yaml).
"""

import argparse
import difflib
import glob
import json
import os
import re
import sys

import yaml

# libyaml's C loader and dumper where PyYAML has them (Debian's does): 5x faster.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

HERE = os.path.dirname(os.path.abspath(__file__))
CONTAINER_RULES_DIR = "/etc/prometheus/rules/"
REQUIRED_JOBS = ("voxq-api", "voxq-worker", "rabbitmq")
SEVERITIES = ("critical", "warning", "info")
SCRAPE_LABELS = {"job", "instance"}

# --------------------------------------------------------------- names


class Family:
    """One line of metric-names.txt."""

    def __init__(self, name, kind, labels):
        self.name = name
        self.kind = kind
        # None: any labels (not voxq's metrics); else label -> allowed values
        # (None: any value).
        self.labels = labels


def load_names(path):
    families = {}
    errors = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3 or parts[1] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                errors.append(f"{path}:{lineno}: want `NAME TYPE LABELS`, got {line!r}")
                continue
            name, kind, spec = parts
            if spec == "*":
                labels = None
            elif spec == "-":
                labels = {}
            else:
                labels = {}
                for item in spec.split(","):
                    label, _, values = item.partition("=")
                    labels[label] = set(values.split("|")) if values else None
            if name in families:
                errors.append(f"{path}:{lineno}: {name} declared twice")
            families[name] = Family(name, kind, labels)
    return families, errors


def series_names(families):
    """Every series name the families produce -> (family, extra labels)."""
    out = {}
    for fam in families.values():
        if fam.kind == "histogram":
            out[fam.name + "_bucket"] = (fam, {"le"})
            out[fam.name + "_sum"] = (fam, set())
            out[fam.name + "_count"] = (fam, set())
        elif fam.kind == "summary":
            out[fam.name] = (fam, {"quantile"})
            out[fam.name + "_sum"] = (fam, set())
            out[fam.name + "_count"] = (fam, set())
        else:
            out[fam.name] = (fam, set())
    return out


# -------------------------------------------------------------- PromQL

TOKEN = re.compile(
    r"""
     (?P<ws>\s+|\#[^\n]*)
    |(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<num>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z0-9]*)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@])
    """,
    re.X,
)
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "offset", "atan2", "inf", "nan"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
               "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}


class LexError(Exception):
    pass


def tokenize(expr):
    pos = 0
    toks = []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise LexError(f"cannot read {expr[pos:pos + 20]!r}")
        kind = m.lastgroup
        if kind != "ws":
            toks.append((kind, m.group()))
        pos = m.end()
    return toks


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _close(toks, i, open_, close):
    """Index after the bracket that closes toks[i] (== open_)."""
    depth = 0
    while i < len(toks):
        if toks[i] == ("op", open_):
            depth += 1
        elif toks[i] == ("op", close):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise LexError(f"unclosed {open_!r}")


def _matchers(toks, i):
    """Label matchers of the `{...}` at toks[i]; returns (matchers, next index)."""
    end = _close(toks, i, "{", "}")
    inner = toks[i + 1:end - 1]
    matchers = []
    j = 0
    while j < len(inner):
        if j + 2 >= len(inner) or inner[j][0] not in ("ident", "str") or inner[j + 2][0] != "str":
            raise LexError("bad label matcher")
        label = inner[j][1] if inner[j][0] == "ident" else unquote(inner[j][1])
        matchers.append((label, inner[j + 1][1], unquote(inner[j + 2][1])))
        j += 3
        if j < len(inner) and inner[j] == ("op", ","):
            j += 1
    return matchers, end


def selectors(expr):
    """Every vector selector in a PromQL expression: (metric name, matchers)."""
    toks = tokenize(expr)
    out = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if (kind, text) == ("op", "["):
            i = _close(toks, i, "[", "]")  # ranges and subquery steps
        elif (kind, text) == ("op", "{"):
            matchers, i = _matchers(toks, i)
            names = [v for (lbl, op, v) in matchers if lbl == "__name__" and op == "="]
            out.append((names[0] if names else None,
                        [m for m in matchers if m[0] != "__name__"]))
        elif kind == "ident":
            low = text.lower()
            if low in LABEL_LISTS and nxt == "(":
                i = _close(toks, i + 1, "(", ")")
            elif low in KEYWORDS or nxt == "(" or (low in AGGREGATORS and nxt in ("by", "without")):
                i += 1
            elif nxt == "{":
                matchers, i = _matchers(toks, i + 1)
                out.append((text, matchers))
            else:
                out.append((text, []))
                i += 1
        else:
            i += 1
    return out


class Checker:
    def __init__(self, names_path):
        self.families, self.errors = load_names(names_path)
        self.series = series_names(self.families)
        self.records = set()

    def error(self, where, msg):
        self.errors.append(f"{where}: {msg}")

    def check_expr(self, expr, where):
        try:
            sels = selectors(expr)
        except LexError as e:
            self.error(where, f"{e} in {expr!r}")
            return
        for name, matchers in sels:
            self.check_selector(name, matchers, where)

    def check_selector(self, name, matchers, where):
        if name is None:
            self.error(where, "a selector without a metric name")
            return
        if name in self.records:
            return
        if name not in self.series:
            close = difflib.get_close_matches(name, list(self.series) + list(self.records), 1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.error(where, f"unknown metric {name}{hint}: not in metric-names.txt")
            return
        fam, extra = self.series[name]
        if fam.labels is None:
            return
        allowed = set(fam.labels) | SCRAPE_LABELS | extra
        for label, op, value in matchers:
            if label not in allowed:
                self.error(where, f"{name} has no label {label!r} (it has: {', '.join(sorted(allowed))})")
                continue
            enum = fam.labels.get(label)
            if not enum:
                continue
            if op in ("=", "!="):
                values = [value]
            elif re.fullmatch(r"[\w.-]+(\|[\w.-]+)*", value):
                values = value.split("|")
            else:
                values = []  # a real regex: not checked
            for v in values:
                if v not in enum:
                    self.error(where, f"{name}{{{label}}} never takes {v!r} (only {', '.join(sorted(enum))})")


# --------------------------------------------------------------- rules


def load_yaml(path, errors):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=LOADER) or {}
    except (OSError, yaml.YAMLError) as e:
        errors.append(f"{path}: {e}")
        return {}


def check_rules(ck, rules_dir):
    files = sorted(glob.glob(os.path.join(rules_dir, "*.yml")) + glob.glob(os.path.join(rules_dir, "*.yaml")))
    if not files:
        ck.error(rules_dir, "no rule files")
    rules = []
    for path in files:
        doc = load_yaml(path, ck.errors)
        for group in doc.get("groups") or []:
            for rule in group.get("rules") or []:
                rules.append((path, group.get("name"), rule))
                if "record" in rule:
                    ck.records.add(rule["record"])
    alerts = {}
    for path, group, rule in rules:
        name = rule.get("alert") or rule.get("record")
        where = f"{os.path.relpath(path)}: {group}/{name}"
        ck.check_expr(str(rule.get("expr", "")), where)
        if "alert" not in rule:
            continue
        alerts.setdefault(rule["alert"], where)
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            ck.error(where, f"severity label {severity!r}: want one of {', '.join(SEVERITIES)}")
        ann = rule.get("annotations") or {}
        for key in ("summary", "description"):
            if not str(ann.get(key, "")).strip():
                ck.error(where, f"no {key} annotation")
        if "for" not in rule:
            ck.error(where, "no `for:` (say `for: 0m` if it must fire at once)")
    return files, alerts


def check_tests(ck, tests_dir, alerts):
    fires, quiet, tested_exprs = set(), set(), []
    files = sorted(glob.glob(os.path.join(tests_dir, "*.yml")))
    if not files:
        ck.error(tests_dir, "no promtool test files")
    for path in files:
        doc = load_yaml(path, ck.errors)
        for test in doc.get("tests") or []:
            where = f"{os.path.relpath(path)}: {test.get('name', '?')}"
            for s in test.get("input_series") or []:
                try:
                    sels = selectors(str(s.get("series", "")))
                except LexError as e:
                    ck.error(where, f"input series {s.get('series')!r}: {e}")
                    continue
                if len(sels) != 1:
                    ck.error(where, f"input series {s.get('series')!r} is not one series")
                    continue
                ck.check_selector(*sels[0], f"{where}: input series")
            for case in test.get("alert_rule_test") or []:
                name = case.get("alertname")
                if name not in alerts:
                    ck.error(where, f"tests alert {name!r}, which no rule defines")
                (fires if case.get("exp_alerts") else quiet).add(name)
            for case in test.get("promql_expr_test") or []:
                tested_exprs.append(str(case.get("expr", "")))
    for name, where in sorted(alerts.items()):
        if name not in fires:
            ck.error(where, "no promtool test where this alert fires (exp_alerts)")
        if name not in quiet:
            ck.error(where, "no promtool test where this alert must not fire (no exp_alerts)")
    used = set()
    for expr in tested_exprs:
        try:
            used.update(n for n, _ in selectors(expr))
        except LexError:
            pass
    for record in sorted(ck.records - used):
        ck.error(tests_dir, f"recording rule {record} has no promql_expr_test")


def check_config(ck, config_path, rule_files, local_config):
    cfg = load_yaml(config_path, ck.errors)
    where = os.path.relpath(config_path)
    patterns = cfg.get("rule_files") or []
    local_patterns = []
    for p in patterns:
        if not p.startswith(CONTAINER_RULES_DIR):
            ck.error(where, f"rule_files entry {p!r} is not under {CONTAINER_RULES_DIR}, "
                            "where compose mounts ops/prometheus/rules")
            continue
        local_patterns.append(os.path.join(os.path.dirname(rule_files[0]) if rule_files else ".",
                                           p[len(CONTAINER_RULES_DIR):]))
    matched = set()
    for p in local_patterns:
        matched.update(os.path.abspath(f) for f in glob.glob(p))
    for f in rule_files:
        if os.path.abspath(f) not in matched:
            ck.error(where, f"rule_files does not load {os.path.relpath(f)}")
    jobs = [s.get("job_name") for s in cfg.get("scrape_configs") or []]
    for job in REQUIRED_JOBS:
        if job not in jobs:
            ck.error(where, f"no scrape job {job!r} (the rules and dashboards select on it)")
    cfg["rule_files"] = [os.path.abspath(p) for p in local_patterns]
    with open(local_config, "w", encoding="utf-8") as f:
        yaml.dump(cfg, f, Dumper=DUMPER, sort_keys=False)


# ---------------------------------------------------------- dashboards

BUILTIN_VARS = {
    "__rate_interval": "1m", "__interval": "15s", "__interval_ms": "15000",
    "__range": "1h", "__range_s": "3600", "__range_ms": "3600000",
}
VAR_REF = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


def variable_values(variables):
    """A valid stand-in for each template variable."""
    values = {}
    for v in variables:
        name = v.get("name")
        opts = [o.get("value") for o in v.get("options") or [] if o.get("value") not in (None, "$__all")]
        if v.get("type") in ("custom", "interval") and not opts:
            opts = [o.strip() for o in str(v.get("query", "")).split(",") if o.strip()]
        if v.get("type") == "interval":
            values[name] = opts[0] if opts else "5m"
        elif v.get("type") == "custom" and opts:
            values[name] = "|".join(opts) if (v.get("multi") or v.get("includeAll")) else opts[0]
        elif v.get("type") == "constant":
            values[name] = str(v.get("query", ""))
        else:
            values[name] = ".*"
    return values


def substitute(expr, values, where, ck):
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name[0].isdigit():  # $1 in label_replace
            return m.group(0)
        if name in BUILTIN_VARS:
            return BUILTIN_VARS[name]
        if name in values:
            return values[name]
        ck.error(where, f"undefined template variable ${name}")
        return ".*"
    return VAR_REF.sub(repl, expr)


def all_panels(panels):
    for p in panels or []:
        yield p
        yield from all_panels(p.get("panels"))


def check_dashboards(ck, grafana_dir, out_rules):
    ds_uids = set()
    for path in sorted(glob.glob(os.path.join(grafana_dir, "provisioning", "datasources", "*.y*ml"))):
        doc = load_yaml(path, ck.errors)
        for ds in doc.get("datasources") or []:
            if ds.get("uid"):
                ds_uids.add(ds["uid"])
    if not ds_uids:
        ck.error(grafana_dir, "no provisioned data source with a uid")
    files = sorted(glob.glob(os.path.join(grafana_dir, "dashboards", "*.json")))
    if not files:
        ck.error(grafana_dir, "no dashboards")
    groups = []
    seen_uids, seen_titles = {}, {}
    for path in files:
        rel = os.path.relpath(path)
        try:
            with open(path, encoding="utf-8") as f:
                dash = json.load(f)
        except (OSError, ValueError) as e:
            ck.error(rel, f"not valid JSON: {e}")
            continue
        if not isinstance(dash, dict):
            ck.error(rel, "not a dashboard object")
            continue
        uid, title = dash.get("uid"), dash.get("title")
        if not uid or not isinstance(uid, str) or len(uid) > 40:
            ck.error(rel, f"uid {uid!r}: want a string of at most 40 characters")
        elif uid in seen_uids:
            ck.error(rel, f"uid {uid!r} already used by {seen_uids[uid]}")
        seen_uids.setdefault(uid, rel)
        if not title:
            ck.error(rel, "no title")
        elif title in seen_titles:
            ck.error(rel, f"title {title!r} already used by {seen_titles[title]}")
        seen_titles.setdefault(title, rel)
        if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
            ck.error(rel, f"schemaVersion {dash.get('schemaVersion')!r}: want 36 or later")
        variables = (dash.get("templating") or {}).get("list") or []
        names = [v.get("name") for v in variables]
        for n in {n for n in names if names.count(n) > 1}:
            ck.error(rel, f"template variable {n!r} defined twice")
        values = variable_values(variables)
        ds_vars = {v.get("name") for v in variables if v.get("type") == "datasource"}
        for v in variables:
            if v.get("type") == "datasource":
                current = (v.get("current") or {}).get("value")
                if v.get("query") != "prometheus" or current not in ds_uids:
                    ck.error(rel, f"data source variable {v.get('name')!r}: want type prometheus "
                                  f"and a provisioned uid ({', '.join(sorted(ds_uids))}) as default")

        def check_ds(ds, where):
            uid = (ds or {}).get("uid") if isinstance(ds, dict) else None
            if not uid:
                ck.error(where, "no data source uid (select it by uid, not by name)")
                return
            m = re.fullmatch(r"\$\{?(\w+)\}?", uid)
            if m:
                if m.group(1) not in ds_vars:
                    ck.error(where, f"data source ${m.group(1)} is not a data source variable")
            elif uid not in ds_uids:
                ck.error(where, f"data source uid {uid!r} is not provisioned ({', '.join(sorted(ds_uids))})")

        rules = []
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
        for v in variables:
            if v.get("type") != "query":
                continue
            where = f"{rel}: variable {v.get('name')}"
            check_ds(v.get("datasource"), where)
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else str(q or "")
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q, re.S)
            if m:
                inner = substitute(m.group(1), values, where, ck)
            else:
                m2 = re.fullmatch(r"\s*query_result\((.*)\)\s*", q, re.S)
                if not m2:
                    ck.error(where, f"query {q!r}: want label_values(SELECTOR, LABEL) or query_result(EXPR)")
                    continue
                inner = substitute(m2.group(1), values, where, ck)
            ck.check_expr(inner, where)
            if m:
                try:
                    sels = selectors(inner)
                except LexError:
                    sels = []
                for name, _ in sels:
                    fam = ck.series.get(name, (None,))[0]
                    if fam and fam.labels is not None and m.group(2) not in set(fam.labels) | SCRAPE_LABELS:
                        ck.error(where, f"{name} has no label {m.group(2)!r}")
            rules.append({"record": f"dashboard:{stem}:variable_{v.get('name')}", "expr": inner})
        ids = set()
        for p in all_panels(dash.get("panels")):
            pid = p.get("id")
            where = f"{rel}: panel {pid} {p.get('title', '')!r}"
            if not isinstance(pid, int) or pid in ids:
                ck.error(where, "panel id missing or not unique")
            ids.add(pid)
            g = p.get("gridPos") or {}
            if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) \
                    or g["w"] < 1 or g["h"] < 1 or g["x"] < 0 or g["x"] + g["w"] > 24:
                ck.error(where, f"gridPos {g!r}: want integers h, w, x, y inside 24 columns")
            if p.get("type") == "row":
                continue
            targets = p.get("targets") or []
            if not targets:
                ck.error(where, "no query")
            check_ds(p.get("datasource"), where)
            refs = [t.get("refId") for t in targets]
            if len(set(refs)) != len(refs) or None in refs:
                ck.error(where, "refIds missing or not unique")
            for t in targets:
                twhere = f"{where} query {t.get('refId')}"
                check_ds(t.get("datasource") or p.get("datasource"), twhere)
                expr = t.get("expr")
                if not isinstance(expr, str) or not expr.strip():
                    ck.error(twhere, "empty expr")
                    continue
                expr = substitute(expr, values, twhere, ck)
                ck.check_expr(expr, twhere)
                rules.append({"record": f"dashboard:{stem}:panel_{pid}_{t.get('refId')}", "expr": expr})
        groups.append({"name": f"dashboard {os.path.basename(path)}", "rules": rules})
    with open(out_rules, "w", encoding="utf-8") as f:
        yaml.dump({"groups": groups}, f, Dumper=DUMPER, sort_keys=False, width=1000)


# ------------------------------------------------------ compare-scrape

SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+\S+(\s+\S+)?$")
LABEL_PAIR = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def compare_scrape(names_path, paths, require_all):
    families, errors = load_names(names_path)
    for path in paths:
        types = {}
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for line in lines:
            m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
            if m:
                types[m.group(1)] = m.group(2)
        for name, kind in types.items():
            if not name.startswith("voxq_"):
                continue
            fam = families.get(name)
            if fam is None:
                errors.append(f"{path}: {name} ({kind}) is exported but not in metric-names.txt")
            elif fam.kind != kind:
                errors.append(f"{path}: {name} is a {kind}, metric-names.txt says {fam.kind}")
        series = series_names({n: f for n, f in families.items() if n in types})
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            m = SAMPLE.match(line.strip())
            if not m:
                errors.append(f"{path}: cannot read sample line {line!r}")
                continue
            name = m.group(1)
            if not name.startswith("voxq_") or name not in series:
                continue
            fam, extra = series[name]
            labels = dict(LABEL_PAIR.findall(m.group(3) or ""))
            allowed = set(fam.labels) | extra
            for label, value in labels.items():
                if label not in allowed:
                    errors.append(f"{path}: {name} has label {label!r}, metric-names.txt allows "
                                  f"{', '.join(sorted(allowed)) or 'none'}")
                elif fam.labels.get(label) and value not in fam.labels[label]:
                    errors.append(f"{path}: {name}{{{label}={value!r}}}: not one of "
                                  f"{', '.join(sorted(fam.labels[label]))}")
        prefixes = {n.split("_")[1] for n in types if n.startswith("voxq_")}
        missing = sorted(n for n in families if n.startswith("voxq_")
                         and n.split("_")[1] in prefixes and n not in types)
        for n in missing:
            msg = f"{path}: {n} is declared in metric-names.txt, absent from this scrape"
            if require_all:
                errors.append(msg)
            else:
                print(f"note: {msg} (a labelled family has no line before its first sample)")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", default=os.path.join(HERE, "metric-names.txt"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("--prometheus", required=True)
    c.add_argument("--grafana", required=True)
    c.add_argument("--local-config", required=True)
    c.add_argument("--dashboard-rules", required=True)
    s = sub.add_parser("compare-scrape")
    s.add_argument("--require-all", action="store_true")
    s.add_argument("scrapes", nargs="+")
    args = ap.parse_args()

    if args.cmd == "compare-scrape":
        errors = compare_scrape(args.names, args.scrapes, args.require_all)
    else:
        ck = Checker(args.names)
        rule_files, alerts = check_rules(ck, os.path.join(args.prometheus, "rules"))
        check_tests(ck, os.path.join(args.prometheus, "tests"), alerts)
        check_config(ck, os.path.join(args.prometheus, "prometheus.yml"), rule_files, args.local_config)
        check_dashboards(ck, args.grafana, args.dashboard_rules)
        errors = ck.errors
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"{len(errors)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
