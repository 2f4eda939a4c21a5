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
