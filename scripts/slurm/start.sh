#!/usr/bin/env bash
# Configure and start a single-node Slurm cluster on this machine (munged, slurmctld,
# slurmd), for the sweep tests. Needs root and the packages of scripts/slurm/install.sh.
#
#   scripts/slurm/start.sh            start (or check) the cluster; prints the partition
#   scripts/slurm/stop.sh             stop the daemons this script started
#
# No cgroups are needed: processes are tracked through /proc (proctrack/linuxproc) and
# tasks are not confined (task/none); no accounting daemon. The node's CPUs and memory
# are read with `slurmd -C`. Everything the cluster writes lives under $IL6RCC_SLURM_DIR
# (default /var/tmp/il6rcc-slurm): slurm.conf, state, logs, pid files.
set -euo pipefail
dir=${IL6RCC_SLURM_DIR:-/var/tmp/il6rcc-slurm}
conf=$dir/slurm.conf
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm: start.sh runs the daemons as root; run it as root" >&2
  exit 1
fi
for b in munged slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || { echo "slurm: $b not found; run scripts/slurm/install.sh" >&2; exit 1; }
done
mkdir -p "$dir"/{state,spool,log,run}
chmod 755 "$dir"

# munge: the authentication daemon every Slurm message goes through.
if ! [ -S /run/munge/munge.socket.2 ] || ! munge -n </dev/null >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 755 /run/munge
  if ! [ -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n </dev/null | unmunge >/dev/null || { echo "slurm: munged did not start" >&2; exit 1; }
fi

host=$(hostname -s)
node=$(slurmd -C | head -1)   # NodeName=... CPUs=... RealMemory=... (this machine)
node=${node/NodeName=* CPUs/NodeName=$host CPUs}
# leave room for the test runner itself
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((mem * 3 / 4))/" <<<"$node")
cat > "$conf.tmp" <<CONF
# Written by scripts/slurm/start.sh: a single-node cluster for tests.
ClusterName=il6rcc
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
mv "$conf.tmp" "$conf"
# the clients (sbatch, squeue, scontrol, and submitit through them) read the same file
mkdir -p /etc/slurm
if [ -e /etc/slurm/slurm.conf ] && ! grep -q 'Written by scripts/slurm/start.sh' /etc/slurm/slurm.conf; then
  echo "slurm: /etc/slurm/slurm.conf exists and was not written by this script; leaving it;" \
       "set SLURM_CONF=$conf for the clients" >&2
else
  cp "$conf" /etc/slurm/slurm.conf
fi
export SLURM_CONF=$conf

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running "$dir/run/slurmctld.pid" || slurmctld -f "$conf"
running "$dir/run/slurmd.pid" || slurmd -f "$conf"
for _ in $(seq 100); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
  case "$state" in idle|mix|alloc) break ;; esac
  sleep 0.2
done
if ! [[ "$state" =~ ^(idle|mix|alloc)$ ]]; then
  echo "slurm: the node did not come up (state '${state:-none}'); logs in $dir/log" >&2
  tail -5 "$dir"/log/*.log >&2 || true
  exit 1
fi
echo "slurm: up; partition debug on $host ($(sinfo -h -o '%c CPUs, %m MB'))"
