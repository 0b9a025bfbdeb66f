#!/usr/bin/env bash
# Stop the single-node cluster of scripts/slurm/start.sh: cancel its jobs, then stop
# slurmd, slurmctld and munged by the pid files they wrote (nothing else is touched).
set -uo pipefail
dir=${IL6RCC_SLURM_DIR:-/var/tmp/il6rcc-slurm}
export SLURM_CONF=$dir/slurm.conf
[ -e "$SLURM_CONF" ] && scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
stop() {
  local pidfile=$1
  [ -s "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}
stop "$dir/run/slurmd.pid"
stop "$dir/run/slurmctld.pid"
stop /run/munge/munged.pid
echo "slurm: stopped"
