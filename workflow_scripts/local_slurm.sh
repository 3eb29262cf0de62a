#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for CI and for trying the slurm profile.
#
#   local_slurm.sh run [--] CMD [ARGS...]   install if needed, start, run CMD against the cluster, stop
#   local_slurm.sh up DIR                    install if needed, start with state in DIR (empty or new)
#   local_slurm.sh down DIR                  stop the daemons started by `up DIR`, remove the config
#   local_slurm.sh install                   apt-get update + install slurmctld slurmd slurm-client munge
#
# The cluster: node `localhost` (NodeAddr 127.0.0.1) that advertises LOCAL_SLURM_CPUS CPUs (default 32)
# and LOCAL_SLURM_MEM_MB of memory (default 262144), more than the machine has (SlurmdParameters=
# config_overrides; nothing is enforced: task/none), so jobs sized for a real GPU node (8 CPUs, 64 GB)
# schedule and share the real cores; LOCAL_SLURM_GPUS fake GPUs (default 4; gres File= symlinks to
# /dev/null, so `--gpus=1` sets CUDA_VISIBLE_DEVICES but no device exists); partitions `cpu`
# (default, MaxTime LOCAL_SLURM_CPU_MAX_MIN minutes, default 300) and `gpu` (MaxTime
# LOCAL_SLURM_GPU_MAX_MIN, default 30; a job asking for more stays pending). Every finished
# job is recorded by the job completion plugin (jobcomp/filetxt) in DIR/jobcomp.txt: partition, time
# limit, state (COMPLETED, FAILED, TIMEOUT...), exit code; slurmctld keeps every job for MinJobAge=3600 s,
# so `scontrol show job` also gives each finished job's GPU request (TresPerJob=gres:gpu:N). Memory is
# enforced as on clusters without cgroups: slurmstepd samples each job's RSS every second
# (jobacct_gather/linux) and kills a job over its --mem (OverMemoryKill; Slurm then records FAILED,
# signal 9, and the job's output says "exceeded memory limit").
# munged runs as the munge user on its own socket inside DIR; slurmctld and slurmd run as root.
# The config is written in DIR and linked from /etc/slurm/{slurm,gres}.conf (where every Slurm client
# looks); `down` (and the exit trap of `run`) stops the daemons by PID and removes those links.
# Must run as root (CI and the developer machines are root). Needs Debian's packages (Slurm 22.05).
set -euo pipefail

CPU_MAX_MIN=${LOCAL_SLURM_CPU_MAX_MIN:-300}
GPU_MAX_MIN=${LOCAL_SLURM_GPU_MAX_MIN:-30}
VCPUS=${LOCAL_SLURM_CPUS:-32}
MEM_MB=${LOCAL_SLURM_MEM_MB:-262144}
GPUS=${LOCAL_SLURM_GPUS:-4}
ETC=/etc/slurm
MARK="# written by whatnext workflow_scripts/local_slurm.sh"

log() { echo "local_slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

install_packages() {
    local missing=()
    for tool in slurmctld slurmd sbatch munged; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if ((${#missing[@]} == 0)); then return 0; fi
    log "installing slurmctld slurmd slurm-client munge (missing: ${missing[*]})"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {  # DIR
    local dir=$1 i
    mkdir -p "$dir"/{state,spool,log,fakedev}
    for ((i = 0; i < GPUS; i++)); do ln -sf /dev/null "$dir/fakedev/nvidia$i"; done
    cat >"$dir/slurm.conf" <<EOF
$MARK
ClusterName=whatnext-local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerParameters=sched_interval=5
KillWait=5
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$VCPUS Sockets=1 CoresPerSocket=$VCPUS ThreadsPerCore=1 RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=$CPU_MAX_MIN State=UP
PartitionName=gpu Nodes=localhost MaxTime=$GPU_MAX_MIN State=UP
EOF
    cat >"$dir/gres.conf" <<EOF
$MARK
AutoDetect=off
NodeName=localhost Name=gpu File=$dir/fakedev/nvidia[0-$((GPUS - 1))]
EOF
}

link_config() {  # DIR: /etc/slurm/{slurm,gres}.conf -> DIR, refusing to replace anything not ours
    local dir=$1 name
    mkdir -p "$ETC"
    for name in slurm.conf gres.conf; do
        [[ -L $ETC/$name && ! -e $ETC/$name ]] && rm -f "$ETC/$name"  # dangling link left by a killed run
        if [[ -e $ETC/$name ]] && ! grep -qF "$MARK" "$ETC/$name"; then
            die "$ETC/$name exists and was not written by this script; not touching a real cluster's config"
        fi
        ln -sfn "$dir/$name" "$ETC/$name"
    done
}

unlink_config() {
    local name
    for name in slurm.conf gres.conf; do
        if [[ -L $ETC/$name ]] && grep -qF "$MARK" "$ETC/$name" 2>/dev/null; then rm -f "$ETC/$name"; fi
        [[ -L $ETC/$name && ! -e $ETC/$name ]] && rm -f "$ETC/$name"  # dangling link of ours
    done
    return 0
}

start_munge() {  # DIR
    local dir=$1
    [[ -f /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    mkdir -p "$dir/munge"
    chown munge:munge "$dir/munge"
    chmod 0755 "$dir/munge"
    runuser -u munge -- munged --socket="$dir/munge/munge.socket.2" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
}

wait_idle() {  # DIR SECONDS: until the node is idle; fails early if a daemon died
    local dir=$1 end=$((SECONDS + $2)) state
    while ((SECONDS < end)); do
        for pidfile in "$dir/slurmctld.pid" "$dir/slurmd.pid"; do
            if [[ -s $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
                log "$(basename "$pidfile" .pid) exited"
                return 1
            fi
        done
        state=$(timeout 5 sinfo -h -n localhost -o %t 2>/dev/null | head -n1 || true)
        if [[ $state == idle ]]; then return 0; fi
        sleep 0.5
    done
    return 1
}

up() {  # DIR
    local dir=$1 start=$SECONDS
    [[ $EUID -eq 0 ]] || die "must run as root (starts slurmctld, slurmd and munged)"
    install_packages
    mkdir -p "$dir"
    chmod 0755 "$dir"  # munged (as munge) must reach its socket folder inside
    dir=$(cd "$dir" && pwd)
    write_config "$dir"
    link_config "$dir"
    start_munge "$dir"
    slurmctld -f "$dir/slurm.conf"
    slurmd -f "$dir/slurm.conf" -N localhost
    if ! wait_idle "$dir" 30; then
        timeout 5 sinfo -N -l >&2 || true
        tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
        die "node localhost did not become idle within 30 s (logs above, state in $dir)"
    fi
    log "cluster up in $((SECONDS - start)) s (install included): partitions $(sinfo -h -o '%P/%l' | tr '\n' ' ')state in $dir"
}

stop_pidfile() {  # PIDFILE NAME: TERM, wait up to 10 s, then KILL
    local pidfile=$1 name=$2 pid i
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then log "$name ($pid) ignored TERM, killing"; kill -KILL "$pid" || true; fi
    fi
    rm -f "$pidfile"
}

down() {  # DIR
    local dir=$1
    local i
    if [[ -s $dir/slurmctld.pid ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
        # Cancel our jobs and let slurmstepd end their processes before slurmd goes.
        timeout 10 scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do
            [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break  # pending, running or completing
            sleep 0.5
        done
    fi
    stop_pidfile "$dir/slurmd.pid" slurmd
    stop_pidfile "$dir/slurmctld.pid" slurmctld
    stop_pidfile "$dir/munge/munged.pid" munged
    unlink_config
    log "cluster down (state was in $dir)"
}

run() {  # CMD...
    local dir rc=0
    [[ $# -gt 0 ]] || die "run needs a command"
    dir=$(mktemp -d "${TMPDIR:-/tmp}/whatnext-slurm.XXXXXX")
    # shellcheck disable=SC2064  # expand dir now
    trap "down '$dir'; [[ -n \${LOCAL_SLURM_KEEP:-} ]] || rm -rf '$dir'" EXIT
    trap 'exit 143' TERM INT
    up "$dir"
    export LOCAL_SLURM_DIR=$dir LOCAL_SLURM_JOBCOMP=$dir/jobcomp.txt
    "$@" || rc=$?
    return "$rc"
}

case ${1:-} in
    install) install_packages ;;
    up) [[ $# -eq 2 ]] || die "usage: $0 up DIR"; up "$2" ;;
    down) [[ $# -eq 2 ]] || die "usage: $0 down DIR"; down "$2" ;;
    run) shift; [[ ${1:-} == -- ]] && shift; run "$@" ;;
    *) sed -n '2,8p' "$0" >&2; exit 2 ;;
esac
