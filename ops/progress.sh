# Sourced by setup.sh and test.sh: announces each phase with the time it
# usually takes (2 cores, nothing cached) and says how long the last took,
# so a long step never looks like a hung one.
# shellcheck shell=bash
_phase_started=""
_phase_name=""
_phase_total_started=$(date +%s)

phase() { # "name" "usual duration"
  phase_done
  _phase_name="$1"
  _phase_started=$(date +%s)
  echo "==> $1 (usually $2)" >&2
}

phase_done() {
  [ -n "$_phase_name" ] || return 0
  echo "    $_phase_name: $(( $(date +%s) - _phase_started )) s" >&2
  _phase_name=""
}

phases_total() {
  phase_done
  echo "==> all done in $(( $(date +%s) - _phase_total_started )) s" >&2
}

# A step run beside the phases that follow it, so that the two cores work
# while the network or the disk is waited on. Its output goes to a log,
# printed when `background_wait` joins it. When the script ends early
# (failure, interruption) the step is stopped, or with --let-finish (one
# that installs packages, which a stop could leave half-configured) waited
# for.
_bg_pids=()
_bg_names=()
_bg_logs=()
_bg_started=()
_bg_let_finish=()

background() { # [--let-finish] "name" command...
  local let_finish=0 name log
  if [ "$1" = --let-finish ]; then
    let_finish=1
    shift
  fi
  name="$1"
  shift
  log=$(mktemp "${TMPDIR:-/tmp}/voxq-background.XXXXXX")
  # Its own process group (setsid), so that stopping it stops its children.
  setsid "$@" >"$log" 2>&1 </dev/null &
  _bg_pids+=("$!")
  _bg_names+=("$name")
  _bg_logs+=("$log")
  _bg_started+=("$(date +%s)")
  _bg_let_finish+=("$let_finish")
  echo "==> $name: started in the background" >&2
  trap _background_stop EXIT
}

background_wait() { # "name": fails as the step failed
  local i rc=0
  for i in "${!_bg_names[@]}"; do
    [ "${_bg_names[$i]}" = "$1" ] || continue
    phase_done
    echo "==> waiting for $1 (started in the background)" >&2
    wait "${_bg_pids[$i]}" || rc=$?
    sed 's/^/    | /' "${_bg_logs[$i]}" >&2
    rm -f "${_bg_logs[$i]}"
    echo "    $1: done $(( $(date +%s) - _bg_started[i] )) s after it started (exit $rc)" >&2
    unset '_bg_pids[i]' '_bg_names[i]' '_bg_logs[i]' '_bg_started[i]' '_bg_let_finish[i]'
    return "$rc"
  done
  echo "background_wait: no step named '$1'" >&2
  return 1
}

_background_stop() {
  local i
  for i in "${!_bg_pids[@]}"; do
    if [ "${_bg_let_finish[$i]}" = 1 ]; then
      echo "==> letting ${_bg_names[$i]} finish (started in the background)" >&2
    else
      kill -- "-${_bg_pids[$i]}" 2>/dev/null || true
    fi
    wait "${_bg_pids[$i]}" 2>/dev/null || true
    rm -f "${_bg_logs[$i]}"
  done
}
