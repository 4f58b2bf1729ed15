#!/bin/bash
# Stop what start.sh started, by pid file (munged is shared and left running).
R=${SLURM_ROOT:?set SLURM_ROOT}
for f in "$R"/run/slurmrestd.pid "$R"/run/slurmd-*.pid "$R"/run/slurmctld.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
pids=""
for i in $(seq 50); do pids=$(cat "$R"/run/*.pid 2>/dev/null | xargs -r ps -o pid= -p 2>/dev/null || true); [ -z "$pids" ] && break; sleep 0.1; done
[ -n "${pids:-}" ] && kill -9 $pids 2>/dev/null
# slurmstepd of jobs still running (their parent slurmd is gone)
for p in $(pgrep -x slurmstepd || true); do grep -qs "$R" /proc/$p/cmdline /proc/$p/environ && kill -9 "$p"; done
exit 0
