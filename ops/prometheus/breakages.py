#!/usr/bin/env python3
"""The self-test's breakages for ops/check-observability.sh: for each check,
a way to break a copy of ops/prometheus and ops/grafana that the check
must refuse.

    breakages.py list                       INDEX<TAB>CHECK<TAB>WHAT per line
    breakages.py apply INDEX PROM_DIR GRAFANA_DIR

CHECK is the step of ops/check-observability.sh that must fail: lint
(lint.py), config (promtool check config), rules (promtool check rules),
tests (promtool test rules) or dashboards (promtool check rules on the
dashboards' queries). A breakage that no longer applies (the file it edits
changed shape) is an error, never a silent pass.
"""

import json
import os
import sys

import yaml

# libyaml's C loader and dumper where PyYAML has them (Debian's does): 5x faster.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

ALERTS = "rules/voxq-alerts.yml"


def replace(path, old, new, count=1):
    """Replaces the first `count` occurrences (-1: all) of old."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if old not in text:
        raise SystemExit(f"cannot break {path}: {old!r} is not there (has it changed shape?)")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.replace(old, new, count))


def edit_json(path, mutate):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    mutate(dash)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dash, f, indent=2)


def first_target(dash):
    return next(t for p in dash["panels"] if p.get("type") != "row" for t in p.get("targets", []))


def add_rule(prom, rule):
    path = os.path.join(prom, ALERTS)
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=LOADER)
    doc["groups"][-1]["rules"].append(rule)
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(doc, f, Dumper=DUMPER, sort_keys=False)


def strip_severity(prom):
    path = os.path.join(prom, ALERTS)
    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=LOADER)
    doc["groups"][0]["rules"][0]["labels"].pop("severity")
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(doc, f, Dumper=DUMPER, sort_keys=False)


def breakages():
    """(check, what is broken, mutation of (prometheus dir, grafana dir))."""
    def p(path):
        return lambda prom, graf: os.path.join(prom, path)

    def g(path):
        return lambda prom, graf: os.path.join(graf, path)

    def text(where, old, new, count=1):
        return lambda prom, graf: replace(where(prom, graf), old, new, count)

    def dash(where, mutate):
        return lambda prom, graf: edit_json(where(prom, graf), mutate)

    overview = g("dashboards/overview.json")
    queues = g("dashboards/queues-workers.json")
    return [
        ("config", "a scrape interval that is not a duration",
         text(p("prometheus.yml"), "scrape_interval: 15s", "scrape_interval: 15 seconds")),
        ("config", "a scrape config with an unknown field",
         text(p("prometheus.yml"), "        type: A\n", "        type: A\n        typ: A\n")),
        ("lint", "rule_files outside the rules mount",
         text(p("prometheus.yml"), "/etc/prometheus/rules/*.yml", "/etc/prometheus/rule/*.yml")),
        ("lint", "the voxq-worker scrape job renamed",
         text(p("prometheus.yml"), "job_name: voxq-worker", "job_name: voxq-workers")),
        ("rules", "an alert expression that does not parse",
         text(p(ALERTS), "(voxq_api_queue_oldest_age_seconds) > 600", "(voxq_api_queue_oldest_age_seconds) > > 600")),
        ("rules", "an annotation template that does not parse",
         text(p(ALERTS), "{{ $labels.store }} down", "{{ $labels.store }down")),
        ("tests", "the queue-age threshold moved (tests expect 600 s)",
         text(p(ALERTS), "(voxq_api_queue_oldest_age_seconds) > 600", "(voxq_api_queue_oldest_age_seconds) > 900")),
        ("tests", "replica gauges summed instead of max'ed",
         text(p(ALERTS), "max by (model) (voxq_api_queue_oldest_age_seconds) > 600",
              "sum by (model) (voxq_api_queue_oldest_age_seconds) > 600")),
        ("tests", "health-check 503s counted as API errors",
         text(p(ALERTS), ', route!~"/health/.*"}', "}", count=-1)),
        ("lint", "an unknown metric in an alert",
         text(p(ALERTS), "min by (store) (voxq_api_store_up)", "min by (store) (voxq_api_stores_up)")),
        ("lint", "an alert without a severity", lambda prom, graf: strip_severity(prom)),
        ("lint", "an alert without a promtool test",
         lambda prom, graf: add_rule(prom, {
             "alert": "VoxqUntested", "expr": "max(voxq_api_outbox_pending) > 1000", "for": "5m",
             "labels": {"severity": "warning"},
             "annotations": {"summary": "s", "description": "d"}})),
        ("lint", "a test series of an unknown metric",
         text(p("tests/api.test.yml"), "'voxq_api_store_up{", "'voxq_api_store_upp{")),
        ("dashboards", "a dashboard query that does not parse",
         dash(overview, lambda d: first_target(d).__setitem__("expr", first_target(d)["expr"] + ")"))),
        ("lint", "an unknown metric in a dashboard",
         text(overview, "voxq_api_jobs_submitted_total", "voxq_api_jobs_submited_total")),
        ("lint", "a label the metric does not have",
         text(queues, 'lane=~\\"$lane\\"', 'lanes=~\\"$lane\\"')),
        ("lint", "a label value the metric never takes",
         text(g("dashboards/webhooks.json"), 'outcome=\\"delivered\\"', 'outcome=\\"delivery\\"')),
        ("lint", "an undefined template variable",
         text(queues, 'model=~\\"$model\\"', 'model=~\\"$models\\"')),
        ("lint", "a dashboard that is not valid JSON",
         text(g("dashboards/tenants-quotas.json"), '"panels": [', '"panels": [,')),
        ("lint", "two dashboards with one uid",
         dash(g("dashboards/webhooks.json"), lambda d: d.__setitem__("uid", "voxq-overview"))),
        ("lint", "a data source uid that is not provisioned",
         dash(overview, lambda d: d["panels"][1].__setitem__("datasource", {"type": "prometheus", "uid": "prom"}))),
        ("lint", "a panel wider than the grid",
         dash(overview, lambda d: d["panels"][1]["gridPos"].__setitem__("x", 20))),
    ]


def main():
    if sys.argv[1:2] == ["list"]:
        for i, (check, what, _) in enumerate(breakages()):
            print(f"{i}\t{check}\t{what}")
    elif sys.argv[1:2] == ["apply"] and len(sys.argv) == 5:
        _, _, mutate = breakages()[int(sys.argv[2])]
        mutate(sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
