#!/usr/bin/env bash
# Offline checks of voxq's Prometheus configuration, alert and recording
# rules and Grafana dashboards; no Prometheus or Grafana needed:
#   lint        ops/prometheus/lint.py: every metric, label and label value
#               that rules, tests and dashboards select is in
#               ops/prometheus/metric-names.txt; every alert has a severity,
#               summary, description, `for` and a test where it fires and one
#               where it does not; dashboards are valid (unique uids and
#               panel ids, data source by uid, no undefined variable, ...)
#   config      promtool check config on prometheus.yml (a copy whose
#               rule_files point at the checkout, not at the container's
#               /etc/prometheus/rules/)
#   rules       promtool check rules on ops/prometheus/rules
#   tests       promtool test rules on ops/prometheus/tests
#   dashboards  promtool check rules on every dashboard query, written as a
#               recording rule with its template variables replaced
# then proves that each check still fails on a broken copy
# (ops/prometheus/breakages.py).
#   ops/check-observability.sh [--no-self-test]
#
# Tools: promtool from Debian's `prometheus` package, fetched with
# `apt-get download` and unpacked under ~/.cache/voxq/promtool, not
# installed: installing the package would start a Prometheus daemon on
# :9090, the API's default metrics port. $VOXQ_PROMTOOL, or else a
# promtool on PATH, is used as it is. Debian's python3 and python3-yaml,
# installed if missing (as root or through sudo).
# About 10 s fresh (a 19 MB download), 7 s after, 1 s with --no-self-test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=ops/progress.sh
source "$root/ops/progress.sh"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/voxq/promtool"

self_test=1
case "${1:-}" in
  "") ;;
  --no-self-test) self_test=0 ;;
  *) echo "usage: $0 [--no-self-test]" >&2; exit 2 ;;
esac

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

phase "tools: python3-yaml, promtool" "seconds; 5 s fresh"
# Debian's interpreter, whatever python3 comes first on PATH (a pyenv or
# venv one may lack PyYAML).
python=/usr/bin/python3
if ! "$python" -c 'import yaml' 2>/dev/null; then
  echo "installing python3 and python3-yaml" >&2
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-yaml >/dev/null
fi
promtool="${VOXQ_PROMTOOL:-$(command -v promtool || true)}"
if [ -z "$promtool" ]; then
  promtool="$cache/promtool"
  mkdir -p "$cache"
  # One download at a time; a second run waits for the first.
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -x "$promtool" ]; then
    apt-cache show prometheus >/dev/null 2>&1 || sudo_ apt-get update -qq
    mkdir -p "$work/deb"
    sandbox=()
    # As root, apt would download as _apt, who cannot write into $work.
    [ "$(id -u)" != 0 ] || sandbox=(-o APT::Sandbox::User=root)
    (cd "$work/deb" && timeout 300 apt-get download -qq "${sandbox[@]}" prometheus)
    dpkg-deb --fsys-tarfile "$work"/deb/prometheus_*.deb | tar -x -C "$work/deb" ./usr/bin/promtool
    install -m 755 "$work/deb/usr/bin/promtool" "$promtool.new"
    mv "$promtool.new" "$promtool"
    rm -rf "$work/deb"
  fi
  flock -u 9
fi
echo "    $("$promtool" --version 2>&1 | head -n1)" >&2

# Runs the checks (all, or lint and the ones named) on a Prometheus and a
# Grafana directory; prints one line per check and, for a failed one, its
# output unless quiet. Sets `failed` to the names of the checks that failed.
checks() { # PROMETHEUS_DIR GRAFANA_DIR OUT_DIR quiet|verbose [CHECK...]
  local prom=$1 graf=$2 out=$3 mode=$4 name
  shift 4
  local only=" $* "
  failed=()
  mkdir -p "$out"
  step() { # NAME COMMAND...
    name=$1; shift
    # lint always runs: it writes the files that config and dashboards check.
    [ "$only" = "  " ] || [ "$name" = lint ] || [[ "$only" == *" $name "* ]] || return 0
    if "$@" >"$out/$name.log" 2>&1; then
      [ "$mode" = quiet ] || echo "    $name: ok" >&2
    else
      failed+=("$name")
      [ "$mode" = quiet ] || { echo "    $name: FAILED" >&2; sed 's/^/      /' "$out/$name.log" >&2; }
    fi
  }
  step lint "$python" -B "$root/ops/prometheus/lint.py" --names "$prom/metric-names.txt" check \
    --prometheus "$prom" --grafana "$graf" \
    --local-config "$out/prometheus.yml" --dashboard-rules "$out/dashboard-queries.yml"
  step config "$promtool" check config "$out/prometheus.yml"
  step rules "$promtool" check rules "$prom"/rules/*.yml
  step tests "$promtool" test rules "$prom"/tests/*.yml
  step dashboards "$promtool" check rules "$out/dashboard-queries.yml"
}

phase "checks: lint, config, rules, tests, dashboards" "1 s"
checks "$root/ops/prometheus" "$root/ops/grafana" "$work/checks" verbose
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi

if [ "$self_test" = 1 ]; then
  phase "self-test: each check refuses a broken copy" "6 s"
  bad=0
  while IFS=$'\t' read -r i want what; do
    copy="$work/self-test/$i"
    mkdir -p "$copy"
    cp -r "$root/ops/prometheus" "$copy/prometheus"
    cp -r "$root/ops/grafana" "$copy/grafana"
    if ! "$python" -B "$root/ops/prometheus/breakages.py" apply "$i" "$copy/prometheus" "$copy/grafana"; then
      echo "    FAIL: could not make $what" >&2
      bad=1
      continue
    fi
    checks "$copy/prometheus" "$copy/grafana" "$copy/out" quiet "$want"
    case " ${failed[*]} " in
      *" $want "*) echo "    $want refuses $what" >&2 ;;
      *) echo "    FAIL: $want accepts $what (failed: ${failed[*]:-none})" >&2; bad=1 ;;
    esac
  done < <("$python" -B "$root/ops/prometheus/breakages.py" list)
  [ "$bad" = 0 ] || { echo "self-test failed: a check no longer catches what it should" >&2; exit 1; }
fi
phases_total
