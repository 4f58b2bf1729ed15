#!/bin/bash
# Start munged + slurmctld + N slurmd "nodes" (fake H100 gres) + slurmrestd (JWT) on loopback.
# Root only, no systemd. Usage: SLURM_ROOT=DIR [SLURM_NODES=3] [SLURM_PORT=16817] start.sh
# Prints the nodes when they are idle; exits non-zero (with the log tail) when they never are.
# Based on ../shared/peers/RECIPES.md section 3 (seen to work on Debian 12, Slurm 22.05).
set -euo pipefail
R=${SLURM_ROOT:?set SLURM_ROOT}; N=${SLURM_NODES:-3}; P=${SLURM_PORT:-16817}; H=$(hostname -s)
REST=${SLURM_REST_PORT:-6820}
mkdir -p "$R"/{etc,state,log,run,dev} && chmod 755 "$R/run"
for i in $(seq 0 7); do [ -e "$R/dev/nvidia$i" ] || mknod "$R/dev/nvidia$i" c 1 3; done
[ -f "$R/etc/jwt_hs256.key" ] || { dd if=/dev/urandom of="$R/etc/jwt_hs256.key" bs=32 count=1 2>/dev/null; chmod 600 "$R/etc/jwt_hs256.key"; }
cat > "$R/etc/slurm.conf" <<CONF
ClusterName=testcluster
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$P
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$R/etc/jwt_hs256.key
CredType=cred/munge
CommunicationParameters=NoInAddrAny
StateSaveLocation=$R/state
SlurmdSpoolDir=$R/spool/%n
SlurmctldPidFile=$R/run/slurmctld.pid
SlurmdPidFile=$R/run/slurmd-%n.pid
SlurmctldLogFile=$R/log/slurmctld.log
SlurmdLogFile=$R/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
RebootProgram=/bin/true
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
SlurmdTimeout=30
MinJobAge=300
CONF
for n in $(seq 1 "$N"); do nn=$(printf gpu%02d "$n")
  echo "NodeName=$nn NodeHostname=$H NodeAddr=127.0.0.1 Port=$((P + 200 + n)) CPUs=16 Boards=1 SocketsPerBoard=2 CoresPerSocket=8 ThreadsPerCore=1 RealMemory=64000 Gres=gpu:h100:8 State=UNKNOWN" >> "$R/etc/slurm.conf"
  mkdir -p "$R/spool/$nn"; done
echo "PartitionName=gpu Nodes=gpu[01-$(printf %02d "$N")] Default=YES MaxTime=INFINITE State=UP" >> "$R/etc/slurm.conf"
printf 'AutoDetect=off\nNodeName=gpu[01-%02d] Name=gpu Type=h100 File=%s/dev/nvidia[0-7]\n' "$N" "$R" > "$R/etc/gres.conf"
export SLURM_CONF=$R/etc/slurm.conf
mkdir -p /run/munge && chown munge:munge /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
slurmctld -i
for n in $(seq 1 "$N"); do slurmd -N "$(printf gpu%02d "$n")"; done
ok=""
for i in $(seq 300); do
  [ "$(sinfo -h -N -o %T 2>/dev/null | grep -c '^idle$')" = "$N" ] && { ok=1; break; }; sleep 0.1; done
if [ -z "$ok" ]; then echo "slurm nodes never became idle" >&2; tail -20 "$R"/log/*.log >&2; exit 1; fi
if [ -x /usr/sbin/slurmrestd ] && [ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/auth_jwt.so ]; then
  id clusterops >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin clusterops
  (SLURM_JWT=daemon exec slurmrestd -a rest_auth/jwt -s openapi/v0.0.38 -u nobody -g nogroup "127.0.0.1:$REST" \
     > "$R/log/slurmrestd.log" 2>&1 < /dev/null) & echo $! > "$R/run/slurmrestd.pid"
fi
sinfo -N -o '%N %T %G'
