#!/usr/bin/env bash
# Install a single-node Slurm from Debian's packages (slurmctld, slurmd, slurm-client,
# munge), for the sweep tests and for trying `il6rcc sweep --executor slurm` on one
# machine. Needs root (apt-get). Idempotent: does nothing when the packages are there.
# Start the daemons with scripts/slurm/start.sh, stop them with scripts/slurm/stop.sh.
set -euo pipefail
pkgs=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "slurm: already installed ($(slurmctld -V))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm: installing ${missing[*]} needs root (apt-get); run this script as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The Debian packages try to start their services; in a container without an init
# system that fails, so a policy file tells them not to (removed afterwards).
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
fi
cleanup() { [ $had_policy -eq 0 ] && rm -f "$policy"; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "slurm: installed $(slurmctld -V)"
