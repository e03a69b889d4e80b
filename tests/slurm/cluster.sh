#!/usr/bin/env bash
# A REAL single-node SLURM cluster on localhost, for ganplify's tests.
#
#   tests/slurm/cluster.sh start            install (if missing) and start everything; idempotent
#   tests/slurm/cluster.sh stop [--purge]   stop exactly what `start` started; --purge also
#                                           removes the scratch directory
#   tests/slurm/cluster.sh status           which daemons are up, then sinfo and squeue
#                                           (exit 0 when all are up, 3 otherwise)
#   tests/slurm/cluster.sh env              `export VAR=value` lines a client needs:
#                                           eval "$(tests/slurm/cluster.sh env)"
#   tests/slurm/cluster.sh logs [N]         last N (default 20) lines of every daemon log
#
# What runs (all of it under one scratch directory, all of it on 127.0.0.1):
#   munged     own key and socket, as the munge user
#   mariadbd   own datadir and socket, TCP on 127.0.0.1 only, accounting database for slurmdbd
#   slurmdbd   so that `sacct` works: the Snakemake SLURM executor plugin's default status path
#   slurmctld  controller; slurmd: the one node, with a placeholder GPU (gres gpu:1 on /dev/null)
# Clients find the config through SLURM_CONF (`env` prints it). Snakemake's slurm-jobstep
# executor, which runs inside each job, removes every SLURM_* variable (SLURM_CONF included)
# before it calls srun, so `start` also links /run/slurm/conf -> $DIR/etc: the place SLURM's own
# configless slurmd uses and where clients look when SLURM_CONF is unset and there is no
# /etc/slurm/slurm.conf. `stop` removes that link (only if it is still ours).
# Each daemon runs in the foreground under setsid; its PID is recorded in $DIR/pids/<name>, and
# `stop` ends exactly those PIDs (never a kill by name), so nothing else on the machine is touched.
#
# Needs root (it installs packages, and slurmd must be root to run jobs as their users), Debian's
# apt repositories for the first run, and no systemd or cgroups (see the slurm.conf below).
#
# Environment (all optional):
#   GANPLIFY_SLURM_DIR           scratch directory           (default /tmp/ganplify-slurm)
#   GANPLIFY_SLURM_CLUSTER       cluster name                (default ganplify)
#   GANPLIFY_SLURM_PARTITION     default partition           (default debug)
#   GANPLIFY_SLURM_PARTITION2    second, non-default one     (default batch)
#   GANPLIFY_SLURMCTLD_PORT      slurmctld port              (default 16817)
#   GANPLIFY_SLURMD_PORT         slurmd port                 (default 16818)
#   GANPLIFY_SLURMDBD_PORT       slurmdbd port               (default 16819)
#   GANPLIFY_SLURM_DB_PORT       private mariadb port        (default 13306)
#   GANPLIFY_SLURM_TIMEOUT       seconds for each readiness wait in `start` (default 90)
#   GANPLIFY_SLURM_NO_INSTALL=1  never run apt-get; fail if a package is missing
#   GANPLIFY_SLURM_PUBLISH_CONF=0  do not link /run/slurm/conf to the config (see above)
# The ports are deliberately not SLURM's (6817-6819) nor MySQL's (3306), so a system SLURM or
# mariadb on the same machine does not clash with this one.

set -euo pipefail

DIR=${GANPLIFY_SLURM_DIR:-/tmp/ganplify-slurm}
CLUSTER=${GANPLIFY_SLURM_CLUSTER:-ganplify}
PARTITION=${GANPLIFY_SLURM_PARTITION:-debug}
PARTITION2=${GANPLIFY_SLURM_PARTITION2:-batch}
CTLD_PORT=${GANPLIFY_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${GANPLIFY_SLURMD_PORT:-16818}
DBD_PORT=${GANPLIFY_SLURMDBD_PORT:-16819}
DB_PORT=${GANPLIFY_SLURM_DB_PORT:-13306}
TIMEOUT=${GANPLIFY_SLURM_TIMEOUT:-90}

# The scratch directory must be absolute: it ends up in config files read from other cwds.
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
DIR=${DIR%/}

ETC=$DIR/etc           # slurm.conf, slurmdbd.conf, gres.conf, db password
LOG=$DIR/log           # every daemon's log
PIDS=$DIR/pids         # the PIDs this script started (the only ones `stop` touches)
RUN=$DIR/run           # the daemons' own pid files
MUNGE=$DIR/munge       # key, socket, seed (owned by the munge user: munged insists)
DB=$DIR/mysql          # mariadb datadir and socket (owned by the mysql user)
STATE=$DIR/state       # slurmctld StateSaveLocation
SPOOL=$DIR/spool       # slurmd SlurmdSpoolDir
MARKER=$DIR/.ganplify-slurm   # proves the directory is ours before `stop --purge` deletes it

SLURM_CONF_FILE=$ETC/slurm.conf
MUNGE_SOCKET=$MUNGE/munge.socket
DB_SOCKET=$DB/mariadbd.sock
DB_NAME=slurm_acct_db

# Clients (sinfo, sbatch, sacct ...) and daemons all find the config through SLURM_CONF;
# slurmdbd.conf and gres.conf are then looked up next to it.
export SLURM_CONF=$SLURM_CONF_FILE

# Daemons in start order; `stop` goes in reverse.
DAEMONS=(munged mariadb slurmdbd slurmctld slurmd)

# ---------------------------------------------------------------------------------------------
# small helpers

say() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { printf 'cluster.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# The executable each recorded PID must be running (a pattern: Debian installs slurmctld and
# slurmd as /usr/sbin/slurmctld-wlm and /usr/sbin/slurmd-wlm behind update-alternatives).
# A recycled PID running another program is treated as "not running" and is never signalled.
daemon_exe() {
    case $1 in
        munged) echo 'munged' ;;
        mariadb) echo 'mariadbd|mysqld' ;;
        *) echo "$1|$1-wlm" ;;
    esac
}

daemon_log() {
    case $1 in
        munged) echo "$LOG/munged.log (and $LOG/munged.out)" ;;
        mariadb) echo "$LOG/mariadb.log (and $LOG/mariadb-install.log)" ;;
        *) echo "$LOG/$1.log (and $LOG/$1.out)" ;;
    esac
}

# PID recorded for a daemon if that process is still alive and still the expected program.
daemon_pid() {
    local name=$1 pid exe
    [[ -r $PIDS/$name ]] || return 1
    pid=$(<"$PIDS/$name")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    exe=${exe% (deleted)}   # a package upgrade replaces the binary under a running daemon
    [[ ${exe##*/} =~ ^($(daemon_exe "$name"))$ ]] || return 1
    # A zombie is not running (it only waits to be reaped).
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
    echo "$pid"
}

daemon_alive() { daemon_pid "$1" >/dev/null; }

# Start a daemon in the foreground of its own session (setsid), stdin from /dev/null and
# stdout/stderr to a file, so it holds no pipe of the caller (pytest's capture would otherwise
# wait for it) and no terminal. In a non-interactive script the background child is not a
# process-group leader, so setsid (and setpriv) exec in place: $! is the daemon's own PID.
launch() {
    local name=$1; shift
    # fd 9 is the lock of `start`: a daemon that inherits it holds the lock for its lifetime,
    # and the next `stop` would wait for it forever. Close it in the daemon.
    (cd "$DIR" && exec setsid "$@" </dev/null >>"$LOG/$name.out" 2>&1 9>&-) &
    echo "$!" >"$PIDS/$name"
    # The exec chain (subshell -> setsid [-> setpriv] -> daemon) takes a moment.
    local i
    for i in $(seq 1 50); do
        daemon_alive "$name" && return 0
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1
    done
    daemon_alive "$name" || die "$name did not start; read $(daemon_log "$name")"
}

# Wait until a command succeeds, failing early (naming the log to read) if the daemon dies.
wait_for() {
    local what=$1 name=$2; shift 2
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        daemon_alive "$name" || die "$name exited while waiting for $what; read $(daemon_log "$name")"
        ((SECONDS < deadline)) ||
            die "timed out after ${TIMEOUT}s waiting for $what; read $(daemon_log "$name")"
        sleep 0.5
    done
}

# True if something already accepts TCP connections on 127.0.0.1:port.
port_busy() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

check_port_free() {
    local name=$1 port=$2 var=$3
    ! port_busy "$port" ||
        die "port $port (for $name) is already in use on 127.0.0.1 by another program; choose another with $var=PORT"
}

# ---------------------------------------------------------------------------------------------
# install

PACKAGES=(slurm-wlm slurmctld slurmd slurm-client slurmdbd munge mariadb-server mariadb-client)

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
            missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ ${GANPLIFY_SLURM_NO_INSTALL:-0} != 1 ]] ||
        die "missing packages (${missing[*]}) and GANPLIFY_SLURM_NO_INSTALL=1"
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts would start the system's own munge/mariadb/slurm services (init scripts
    # work without systemd). Those are not ours and `stop` would never end them, so forbid
    # service starts during the install with a policy-rc.d, unless the machine has one already.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from ganplify tests/slurm/cluster.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    # The package lists may be absent (fresh image) or stale (404s): always refresh them first.
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
    if ((made_policy)); then
        rm -f "$policy"
        trap - EXIT
    fi
}

# ---------------------------------------------------------------------------------------------
# configuration

# Bind to the hostname's address instead of 0.0.0.0, but only if that address is loopback
# (it is on these machines: /etc/hosts maps the hostname to 127.0.0.1). Otherwise SLURM's
# daemons would bind to a public address, which is worse than 0.0.0.0 for a local test.
hostname_is_loopback() {
    local addr
    addr=$(getent ahostsv4 "$(hostname)" 2>/dev/null | awk 'NR==1 {print $1}')
    [[ $addr == 127.* ]]
}

write_configs() {
    mkdir -p "$ETC" "$STATE" "$SPOOL"
    local node_line node_name comm=""
    # The node's real hardware, as SLURM sees it: the first line of `slurmd -C`, e.g.
    # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24000".
    node_line=$(SLURM_CONF=/dev/null slurmd -C 2>/dev/null | head -n 1)
    [[ $node_line == NodeName=* ]] || die "\`slurmd -C\` gave no node line: $node_line"
    node_name=${node_line%% *}
    node_name=${node_name#NodeName=}
    if hostname_is_loopback; then
        comm="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
    else
        say "WARNING: $(hostname) does not resolve to 127.x: daemons listen on all interfaces (ports $CTLD_PORT, $SLURMD_PORT, $DBD_PORT)"
    fi

    cat >"$ETC/slurm.conf" <<EOF
# Written by ganplify tests/slurm/cluster.sh; rewritten by every \`start\`.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
$comm
# root runs everything: a test machine, not a multi-user cluster.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No systemd and no cgroups on these machines: track processes through /proc, no task binding,
# no per-job accounting sampling.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
# Cores and memory are consumable. DefMemPerCPU matters: without it a job with no --mem takes
# the whole node's memory and every other job stays PENDING.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
# A node that was DOWN (e.g. slurmd restarted) comes back by itself.
ReturnToService=2
# Finished jobs stay in squeue/scontrol for 10 minutes (the plugin's squeue fallback needs that);
# short kill wait so that scancel and time limits act quickly.
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
MessageTimeout=10
SlurmctldTimeout=60
SlurmdTimeout=120
SchedulerType=sched/backfill
# Accounting through slurmdbd, so sacct works (the plugin's default status command).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# For slurmdbd connections (sacct, sacctmgr, slurmctld) SLURM takes the munge socket from
# AccountingStoragePass, not from AuthInfo: without this they use /run/munge/munge.socket.2.
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
# One placeholder GPU (gres.conf maps it to /dev/null), so --gpus=1 / --gres=gpu:1 schedule.
GresTypes=gpu
$node_line NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$node_name Default=YES MaxTime=INFINITE State=UP
# A second partition on the same node, so that tests can check that a requested partition
# (Snakemake's slurm_partition resource) is the one a job runs in.
PartitionName=$PARTITION2 Nodes=$node_name Default=NO MaxTime=INFINITE State=UP
EOF

    cat >"$ETC/gres.conf" <<EOF
# Written by ganplify tests/slurm/cluster.sh: a placeholder GPU, no autodetection (no NVML).
AutoDetect=off
Name=gpu File=/dev/null
EOF

    # slurmdbd refuses a config readable by others (it holds the db password).
    (
        umask 077
        cat >"$ETC/slurmdbd.conf" <<EOF
# Written by ganplify tests/slurm/cluster.sh; rewritten by every \`start\`.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
$comm
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(<"$ETC/db-password")
StorageLoc=$DB_NAME
EOF
    )
}

# ---------------------------------------------------------------------------------------------
# the daemons

start_munged() {
    daemon_alive munged && return 0
    id munge >/dev/null 2>&1 || die "no munge user: is the munge package installed?"
    # munged checks ownership and permissions: its directory and key belong to munge, the key
    # is 0400, the directory is not writable by others (0755 so other users can reach the socket).
    mkdir -p "$MUNGE"
    chown munge:munge "$MUNGE"
    chmod 0755 "$MUNGE"
    if [[ ! -s $MUNGE/munge.key ]]; then
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE/munge.key" >&2
        else
            dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
        fi
    fi
    chown munge:munge "$MUNGE/munge.key"
    chmod 0400 "$MUNGE/munge.key"
    touch "$LOG/munged.log"
    chown munge:munge "$LOG/munged.log"
    chmod 0640 "$LOG/munged.log"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    say "starting munged"
    launch munged setpriv --reuid=munge --regid=munge --init-groups \
        munged --foreground --key-file="$MUNGE/munge.key" --socket="$MUNGE_SOCKET" \
        --pid-file="$MUNGE/munged.pid" --seed-file="$MUNGE/munged.seed" \
        --log-file="$LOG/munged.log"
    wait_for "munged to answer" munged munge_roundtrip
}

munge_roundtrip() { munge -S "$MUNGE_SOCKET" -n </dev/null | unmunge -S "$MUNGE_SOCKET"; }

db() { mariadb --no-defaults --protocol=socket --socket="$DB_SOCKET" -u root "$@"; }

start_mariadb() {
    daemon_alive mariadb && return 0
    id mysql >/dev/null 2>&1 || die "no mysql user: is the mariadb-server package installed?"
    check_port_free mariadb "$DB_PORT" GANPLIFY_SLURM_DB_PORT
    mkdir -p "$DB"
    touch "$LOG/mariadb.log"
    chown mysql:mysql "$DB" "$LOG/mariadb.log"
    if [[ ! -d $DB/data/mysql ]]; then
        say "initialising the private mariadb in $DB/data"
        rm -rf "$DB/data"
        mkdir -p "$DB/data"
        chown mysql:mysql "$DB/data"
        # --no-defaults: never read /etc/mysql (a system mariadb's settings); root logs in through
        # the unix socket only.
        mariadb-install-db --no-defaults --user=mysql --datadir="$DB/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            >>"$LOG/mariadb-install.log" 2>&1 ||
            die "mariadb-install-db failed; read $LOG/mariadb-install.log"
    fi
    rm -f "$DB_SOCKET"
    say "starting mariadb on 127.0.0.1:$DB_PORT"
    launch mariadb mariadbd --no-defaults --user=mysql --datadir="$DB/data" \
        --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address=127.0.0.1 \
        --pid-file="$DB/mariadbd.pid" --log-error="$LOG/mariadb.log" \
        --skip-name-resolve --innodb-buffer-pool-size=64M --max-connections=100
    wait_for "mariadb to accept connections" mariadb db -e 'SELECT 1'
    # Accounting database and its user: the password is made once and kept with the datadir.
    db -e "CREATE DATABASE IF NOT EXISTS $DB_NAME;
           CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(<"$ETC/db-password")';
           ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$(<"$ETC/db-password")';
           GRANT ALL PRIVILEGES ON $DB_NAME.* TO 'slurm'@'127.0.0.1';" ||
        die "could not create the accounting database; read $LOG/mariadb.log"
}

start_slurmdbd() {
    daemon_alive slurmdbd && return 0
    check_port_free slurmdbd "$DBD_PORT" GANPLIFY_SLURMDBD_PORT
    say "starting slurmdbd on 127.0.0.1:$DBD_PORT"
    launch slurmdbd slurmdbd -D
    # sacctmgr talks to slurmdbd directly; the first start also creates the tables (seconds).
    wait_for "slurmdbd to answer sacctmgr" slurmdbd timeout 20 sacctmgr -n show cluster
    # Register the cluster so that jobs are recorded from the first one on (slurmctld would
    # also add it when it first connects, but then the first jobs can race with that).
    if [[ -z $(timeout 20 sacctmgr -n -P show cluster "$CLUSTER" format=Cluster 2>/dev/null) ]]; then
        timeout 20 sacctmgr -i add cluster "$CLUSTER" >&2 ||
            die "sacctmgr add cluster $CLUSTER failed; read $(daemon_log slurmdbd)"
    fi
}

start_slurmctld() {
    daemon_alive slurmctld && return 0
    check_port_free slurmctld "$CTLD_PORT" GANPLIFY_SLURMCTLD_PORT
    say "starting slurmctld on 127.0.0.1:$CTLD_PORT"
    launch slurmctld slurmctld -D
    wait_for "slurmctld to answer" slurmctld timeout 15 scontrol ping
}

start_slurmd() {
    daemon_alive slurmd && return 0
    check_port_free slurmd "$SLURMD_PORT" GANPLIFY_SLURMD_PORT
    mkdir -p "$SPOOL/slurmd"
    say "starting slurmd on 127.0.0.1:$SLURMD_PORT"
    launch slurmd slurmd -D
}

node_idle() {
    local states
    states=$(timeout 15 sinfo -h -N -o '%T') || return 1
    [[ -n $states ]] && ! grep -qv '^idle$' <<<"$states"
}

# The controller has registered with slurmdbd (so jobs are recorded) and sacct answers.
accounting_ready() {
    [[ -n $(timeout 15 sacctmgr -n -P show cluster "$CLUSTER" format=ControlHost) ]] &&
        timeout 15 sacct -n -X -a -S now-1hours >/dev/null
}

# ---------------------------------------------------------------------------------------------
# /run/slurm/conf: the config where SLURM clients look when SLURM_CONF is not set

RUN_CONF=/run/slurm/conf

publish_conf() {
    [[ ${GANPLIFY_SLURM_PUBLISH_CONF:-1} == 1 ]] || return 0
    if [[ -e /etc/slurm/slurm.conf ]]; then
        say "WARNING: /etc/slurm/slurm.conf exists: clients without SLURM_CONF (srun inside Snakemake jobs) will use it, not this cluster"
    fi
    if [[ -L $RUN_CONF && $(readlink "$RUN_CONF") == "$ETC" ]]; then
        return 0
    fi
    if [[ -e $RUN_CONF || -L $RUN_CONF ]]; then
        # Someone else's (another cluster.sh directory, or a configless slurmd): leave it.
        local target
        target=$(readlink "$RUN_CONF" 2>/dev/null || echo "not a link")
        if [[ -L $RUN_CONF && ! -e $RUN_CONF ]]; then
            say "replacing the dangling $RUN_CONF -> $target"
        else
            say "WARNING: $RUN_CONF already exists (-> $target); not linking it to $ETC: jobs that drop SLURM_CONF will not find this cluster"
            return 0
        fi
    fi
    mkdir -p "${RUN_CONF%/*}"
    ln -sfn "$ETC" "$RUN_CONF"
}

unpublish_conf() {
    if [[ -L $RUN_CONF && $(readlink "$RUN_CONF") == "$ETC" ]]; then
        rm -f "$RUN_CONF"
        rmdir "${RUN_CONF%/*}" 2>/dev/null || true   # only if empty
    fi
}

# ---------------------------------------------------------------------------------------------
# subcommands

all_up() {
    local d
    for d in "${DAEMONS[@]}"; do daemon_alive "$d" || return 1; done
}

any_slurm_up() { daemon_alive slurmdbd || daemon_alive slurmctld || daemon_alive slurmd; }

cmd_start() {
    [[ $(id -u) == 0 ]] || die "start needs root (it installs packages and runs slurmd)"
    mkdir -p "$DIR"
    # Serialise concurrent starts/stops on the same directory (e.g. parallel test sessions).
    exec 9>"$DIR/.lock"
    flock -w 600 9 || die "another cluster.sh holds $DIR/.lock"
    if all_up; then
        publish_conf
        say "already running (scratch directory $DIR)"
        return 0
    fi
    local t0=$SECONDS
    install_packages
    touch "$MARKER"
    mkdir -p "$ETC" "$LOG" "$PIDS" "$RUN"
    chmod 0755 "$DIR" "$LOG"   # munge and mysql users write their logs here
    if [[ ! -s $ETC/db-password ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$ETC/db-password")
    fi
    # Rewrite the configs only while no SLURM daemon runs: a running one keeps its own.
    if any_slurm_up; then
        say "some daemons already run: keeping their configs, starting the missing ones"
    else
        write_configs
    fi
    publish_conf
    # Refuse early, before starting anything, if another program holds one of our ports.
    daemon_alive mariadb || check_port_free mariadb "$DB_PORT" GANPLIFY_SLURM_DB_PORT
    daemon_alive slurmdbd || check_port_free slurmdbd "$DBD_PORT" GANPLIFY_SLURMDBD_PORT
    daemon_alive slurmctld || check_port_free slurmctld "$CTLD_PORT" GANPLIFY_SLURMCTLD_PORT
    daemon_alive slurmd || check_port_free slurmd "$SLURMD_PORT" GANPLIFY_SLURMD_PORT
    start_munged
    start_mariadb
    start_slurmdbd
    start_slurmctld
    start_slurmd
    wait_for "the node to be idle in sinfo" slurmd node_idle
    wait_for "slurmctld to register with slurmdbd (sacct)" slurmdbd accounting_ready
    say "cluster '$CLUSTER' is up in $((SECONDS - t0)) s; clients need: export SLURM_CONF=$SLURM_CONF_FILE"
}

# Signal one recorded daemon, wait for it to exit, escalate to SIGKILL if it does not.
stop_daemon() {
    local name=$1 pid i
    pid=$(daemon_pid "$name") || { rm -f "$PIDS/$name"; return 0; }
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 200); do   # 20 s
        daemon_alive "$name" || break
        sleep 0.1
    done
    if daemon_alive "$name"; then
        say "$name (pid $pid) ignored SIGTERM for 20 s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            daemon_alive "$name" || break
            sleep 0.1
        done
    fi
    daemon_alive "$name" && die "$name (pid $pid) is still running"
    rm -f "$PIDS/$name"
}

# Job steps left behind (only if slurmd died before its jobs ended: `stop` cancels the jobs
# first). slurmstepd starts a session of its own and wipes its environment, but it keeps
# slurmd's log open: a slurmstepd with our $LOG/slurmd.log open is ours, and so is everything
# in its session (the job's processes). Nothing else on the machine matches.
our_step_sessions() {
    local p exe
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        [[ ${exe##*/} == slurmstepd* ]] || continue
        if find "$p/fd" -maxdepth 1 -lname "$LOG/slurmd.log" 2>/dev/null | grep -q .; then
            awk '{print $6}' "$p/stat"   # field 6 of /proc/PID/stat: the session id
        fi
    done | sort -u
}

kill_leftover_steps() {
    local sids pids sig
    mapfile -t sids < <(our_step_sessions)
    ((${#sids[@]})) || return 0
    for sig in TERM KILL; do
        mapfile -t pids < <(ps -e -o pid=,sid= | awk -v list="${sids[*]}" '
            BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) s[a[i]] = 1 }
            ($2 in s) { print $1 }')
        ((${#pids[@]})) || break
        say "ending leftover job processes (SIG$sig): ${pids[*]}"
        kill -"$sig" "${pids[@]}" 2>/dev/null || true
        sleep 2
    done
}

cmd_stop() {
    local purge=0
    [[ ${1:-} == --purge ]] && purge=1
    if [[ ! -d $DIR ]]; then
        say "nothing to stop: $DIR does not exist"
        return 0
    fi
    [[ -e $MARKER ]] || die "$DIR was not made by cluster.sh (no $MARKER): not touching it"
    exec 9>"$DIR/.lock"
    flock -w 600 9 || die "another cluster.sh holds $DIR/.lock"

    # Cancel the jobs first, so slurmd's job steps end cleanly before the daemons go away.
    if daemon_alive slurmctld; then
        local jobs deadline=$((SECONDS + 30))
        mapfile -t jobs < <(timeout 15 squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null || true)
        if ((${#jobs[@]})); then
            say "cancelling jobs: ${jobs[*]}"
            timeout 15 scancel "${jobs[@]}" || true
            # Wait for them to end (only slurmd can end them; if it is gone, the leftover
            # steps are killed below instead).
            while daemon_alive slurmd && ((SECONDS < deadline)) &&
                [[ -n $(timeout 15 squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null || true) ]]; do
                sleep 1
            done
        fi
    fi

    local d i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        stop_daemon "${DAEMONS[i]}"
    done
    kill_leftover_steps
    unpublish_conf

    for d in "${DAEMONS[@]}"; do
        daemon_alive "$d" && die "$d is still running"
    done
    if ((purge)); then
        rm -rf "$DIR"
        say "stopped; removed $DIR"
    else
        say "stopped; state and logs kept in $DIR (\`stop --purge\` removes it)"
    fi
}

cmd_status() {
    local d pid up=0
    for d in "${DAEMONS[@]}"; do
        if pid=$(daemon_pid "$d"); then
            printf '%-10s up (pid %s)\n' "$d" "$pid"
            up=$((up + 1))
        else
            printf '%-10s down\n' "$d"
        fi
    done
    echo "scratch directory: $DIR"
    if daemon_alive slurmctld && [[ -r $SLURM_CONF_FILE ]]; then
        echo "--- sinfo"
        timeout 15 sinfo || true
        echo "--- squeue"
        timeout 15 squeue || true
    fi
    ((up == ${#DAEMONS[@]})) || return 3
}

cmd_env() {
    printf 'export SLURM_CONF=%q\n' "$SLURM_CONF_FILE"
    printf 'export GANPLIFY_SLURM_DIR=%q\n' "$DIR"
}

cmd_logs() {
    local n=${1:-20} f
    for f in "$LOG"/*; do
        [[ -f $f ]] || continue
        echo "=== $f"
        tail -n "$n" "$f"
    done
}

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

case ${1:-} in
    start) cmd_start ;;
    stop) shift; cmd_stop "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    logs) shift; cmd_logs "$@" ;;
    *) usage ;;
esac
