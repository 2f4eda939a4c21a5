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

# A CPU-bound step run beside the download-bound phases that follow it, so
# that the two cores work while the network is waited on. Its output goes
# to a log, printed when `background_wait` joins it; stopped with the
# script on failure or interruption.
_bg_pids=()
_bg_names=()
_bg_logs=()
_bg_started=()

background() { # "name" command...
  local name="$1" log
  shift
  log=$(mktemp "${TMPDIR:-/tmp}/voxq-background.XXXXXX")
  # Its own process group (setsid), so that stopping it stops its children.
  setsid "$@" >"$log" 2>&1 </dev/null &
  _bg_pids+=("$!")
  _bg_names+=("$name")
  _bg_logs+=("$log")
  _bg_started+=("$(date +%s)")
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
    unset '_bg_pids[i]' '_bg_names[i]' '_bg_logs[i]' '_bg_started[i]'
    return "$rc"
  done
  echo "background_wait: no step named '$1'" >&2
  return 1
}

_background_stop() {
  local i
  for i in "${!_bg_pids[@]}"; do
    kill -- "-${_bg_pids[$i]}" 2>/dev/null || true
    wait "${_bg_pids[$i]}" 2>/dev/null || true
    rm -f "${_bg_logs[$i]}"
  done
}
