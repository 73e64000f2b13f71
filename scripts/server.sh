#!/usr/bin/env bash
# A tracking server for a team: PostgreSQL keeps the experiments, runs, metrics, logged and registered models;
# `mlflow server` serves the UI and the REST API and stores the artifacts clients upload through it.
#
#   scripts/server.sh [mlflow server options]   start PostgreSQL (its cluster is created on first use), then MLflow
#                                               in the foreground; Ctrl-C stops MLflow, PostgreSQL keeps running
#   scripts/server.sh stop                      stop PostgreSQL
#
# Stages log there with MLFLOW_TRACKING_URI=http://<host>:<port>. Options after the command go to `mlflow server`
# last, so they win (e.g. --workers 2, --app-name basic-auth). Environment, defaults in brackets:
#   FINDISTILL_SERVER_HOST  [127.0.0.1]  the interface MLflow binds; 0.0.0.0 opens it to other machines (see the note
#                                        it prints: MLflow has no authentication by default)
#   FINDISTILL_SERVER_PORT  [5000]       MLflow's port
#   FINDISTILL_SERVER_URL   [http://<hostname -f>:<port>]  once opened, the address(es) teammates type, comma-separated;
#                                        they become --allowed-hosts and --cors-allowed-origins
#   FINDISTILL_PG_DATA      [.findistill/server/postgres]  the PostgreSQL cluster's folder
#   FINDISTILL_PG_PORT      [5433]       PostgreSQL's port, on 127.0.0.1 only (trust authentication: any account on
#                                        this machine can reach the database; other machines cannot)
#   FINDISTILL_ARTIFACTS_DESTINATION  [.findistill/server/artifacts]  the artifact store (a folder, or s3://...)
#   FINDISTILL_BACKEND_STORE_URI      an existing database (postgresql+psycopg://...): no PostgreSQL is started here
#   FINDISTILL_PYTHON       [.venv/bin/python, else python3]  the Python with mlflow and psycopg (extra `postgres`)
# Relative folders are under the repository root. Needs PostgreSQL's initdb/pg_ctl/psql (Debian: apt-get install
# postgresql, which this script runs when they are missing and it may). As root, the PostgreSQL server runs as the
# `postgres` OS user (initdb refuses root), which must be able to reach FINDISTILL_PG_DATA.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_USER=findistill  # the cluster's superuser (no password: trust on 127.0.0.1)
PG_OS_USER=postgres
DATABASE=mlflow

die() { echo "server.sh: $*" >&2; exit 1; }
absolute() { [[ $1 == /* ]] && echo "$1" || echo "$REPO/$1"; }

PG_DATA=$(absolute "${FINDISTILL_PG_DATA:-.findistill/server/postgres}")
PG_PORT=${FINDISTILL_PG_PORT:-5433}
HOST=${FINDISTILL_SERVER_HOST:-127.0.0.1}
PORT=${FINDISTILL_SERVER_PORT:-5000}
ARTIFACTS=${FINDISTILL_ARTIFACTS_DESTINATION:-.findistill/server/artifacts}

# --- PostgreSQL ---------------------------------------------------------------------------------------------------

# Sets INITDB, PG_CTL and PSQL: from PATH, else from the highest version under /usr/lib/postgresql/*/bin.
find_postgres() {
    INITDB=$(command -v initdb || true) PG_CTL=$(command -v pg_ctl || true)
    if [[ -z $INITDB || -z $PG_CTL ]]; then
        INITDB="" PG_CTL=""
        local bin
        for bin in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4,4 -rn); do
            if [[ -x $bin/initdb && -x $bin/pg_ctl ]]; then INITDB=$bin/initdb PG_CTL=$bin/pg_ctl; break; fi
        done
    fi
    [[ -n $PG_CTL ]] || return 1
    PSQL=$(dirname "$(readlink -f "$PG_CTL")")/psql
    [[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found beside $PG_CTL nor on PATH"
}

# apt-get install postgresql (as root, or with passwordless sudo); then update and install again.
install_postgres() {
    command -v apt-get >/dev/null \
        || die "PostgreSQL not found (no initdb/pg_ctl on PATH nor under /usr/lib/postgresql/*/bin)," \
               "and no apt-get to install it"
    local sudo=()
    if [[ $EUID -ne 0 ]]; then
        sudo -n true 2>/dev/null \
            || die "PostgreSQL not found; install it (sudo apt-get install -y postgresql) and run again"
        sudo=(sudo -n)
    fi
    echo "PostgreSQL not found: apt-get install -y postgresql" >&2
    local apt=("${sudo[@]+"${sudo[@]}"}" env DEBIAN_FRONTEND=noninteractive apt-get)
    { "${apt[@]}" install -y --no-install-recommends postgresql \
        || { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends postgresql; }; } >&2 \
        || die "apt-get install postgresql failed"
}

# Runs a PostgreSQL server binary: as the postgres OS user when root, from / (which that user can enter).
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$PG_OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

pg_running() { [[ -f $PG_DATA/postmaster.pid ]] && as_pg "$PG_CTL" status -D "$PG_DATA" >/dev/null 2>&1; }

# Creates the cluster on first use, starts it unless it runs, creates the database; prints the backend store URI.
start_postgres() {
    find_postgres || { install_postgres; find_postgres || die "PostgreSQL still not found after installing it"; }
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then
        echo "creating a PostgreSQL cluster in $PG_DATA" >&2
        mkdir -p "$PG_DATA"
        chmod 700 "$PG_DATA"
        if [[ $EUID -eq 0 ]]; then
            id "$PG_OS_USER" >/dev/null 2>&1 \
                || die "running as root and there is no '$PG_OS_USER' OS user to run initdb"
            chown "$PG_OS_USER": "$PG_DATA"
        fi
        as_pg test -w "$PG_DATA" \
            || die "the $PG_OS_USER OS user cannot write $PG_DATA (a parent folder closed to it?);" \
                   "set FINDISTILL_PG_DATA to a folder it can reach, e.g. /var/lib/findistill/postgres"
        as_pg "$INITDB" -D "$PG_DATA" --auth=trust -U "$PG_USER" --encoding=UTF8 --locale=C >&2 \
            || die "initdb failed in $PG_DATA"
    fi
    if pg_running; then
        local running_port
        running_port=$(sed -n 4p "$PG_DATA/postmaster.pid")
        [[ $running_port == "$PG_PORT" ]] \
            || echo "PostgreSQL already runs on port $running_port (not $PG_PORT): using it" >&2
        PG_PORT=$running_port
    else
        # 127.0.0.1 only, no Unix socket (nothing to create in /var/run/postgresql, no path-length limit)
        as_pg "$PG_CTL" start -w -t 60 -D "$PG_DATA" -l "$PG_DATA/server.log" \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" >&2 \
            || die "PostgreSQL did not start; see $PG_DATA/server.log (port $PG_PORT taken? set FINDISTILL_PG_PORT)"
    fi
    local psql=("$PSQL" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1)
    if [[ $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'") != 1 ]]; then
        "${psql[@]}" -c "CREATE DATABASE $DATABASE" >&2
    fi
    echo "postgresql+psycopg://$PG_USER@127.0.0.1:$PG_PORT/$DATABASE"
}

stop_postgres() {
    find_postgres || die "PostgreSQL not found"
    if pg_running; then
        as_pg "$PG_CTL" stop -w -m fast -D "$PG_DATA" >&2
    else
        echo "PostgreSQL is not running in $PG_DATA" >&2
    fi
}

# --- MLflow -------------------------------------------------------------------------------------------------------

# Sets SECURITY (mlflow server options) and ADDRESS (the first URL) for a server other machines can reach, and
# prints the note about it. Loopback names stay allowed: stages on this machine may keep using 127.0.0.1.
open_up() {
    local urls=${FINDISTILL_SERVER_URL:-http://$(hostname -f 2>/dev/null || hostname):$PORT}
    local hosts="localhost,localhost:*,127.0.0.1,127.0.0.1:*" origins="" url authority url_list
    IFS=, read -ra url_list <<<"$urls"
    for url in "${url_list[@]}"; do
        [[ $url == http://* || $url == https://* ]] || die "FINDISTILL_SERVER_URL: '$url' is not an http(s):// URL"
        authority=${url#*://}
        authority=${authority%%/*}
        hosts+=",$authority"
        origins+="${origins:+,}${url%%://*}://$authority"
    done
    SECURITY=(--allowed-hosts "$hosts" --cors-allowed-origins "$origins")
    ADDRESS=${origins%%,*}
    cat >&2 <<EOF

SECURITY: MLflow listens on $HOST:$PORT, open to other machines, and has NO AUTHENTICATION by default: anyone who
reaches the port can read, change and delete every experiment, run, model and artifact. Keep it behind a firewall or
VPN, or a reverse proxy with authentication (and TLS), or start it with MLflow's login:
  pip install 'mlflow[auth]'
  MLFLOW_FLASK_SERVER_SECRET_KEY=... MLFLOW_AUTH_ADMIN_PASSWORD=... scripts/server.sh --app-name basic-auth
Teammates must use one of: $origins (FINDISTILL_SERVER_URL); MLflow refuses other Host headers (--allowed-hosts)
and the UI's changes from other origins (--cors-allowed-origins).

EOF
}

main() {
    unset MLFLOW_TRACKING_URI  # the server's store is --backend-store-uri, never a client setting (the Makefile's)
    # MLflow 3's job runner (GenAI scorers, trace rollups; findistill uses none) starts ~8 huey processes and restarts
    # them when Ctrl-C reaches them, leaving orphans behind; off unless asked for.
    export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}
    local python=${FINDISTILL_PYTHON:-}
    if [[ -z $python ]]; then
        if [[ -x $REPO/.venv/bin/python ]]; then python=$REPO/.venv/bin/python; else python=python3; fi
    fi
    local needs=mlflow
    [[ ${FINDISTILL_BACKEND_STORE_URI:-postgresql} == postgresql* ]] && needs+=" psycopg"
    "$python" -c "import importlib.util, sys; sys.exit(not all(map(importlib.util.find_spec, sys.argv[1:])))" \
        $needs 2>/dev/null || die "$python lacks $needs: pip install -e '.[postgres]' (or set FINDISTILL_PYTHON)"

    local backend
    if [[ -n ${FINDISTILL_BACKEND_STORE_URI:-} ]]; then
        backend=$FINDISTILL_BACKEND_STORE_URI
    else
        local name  # the caller's PGHOST, PGSSLMODE... are not for this cluster (psql here, psycopg in MLflow)
        for name in $(compgen -e); do if [[ $name == PG* ]]; then unset "$name"; fi; done
        backend=$(start_postgres)
    fi
    if [[ $ARTIFACTS != *://* ]]; then
        ARTIFACTS=$(absolute "$ARTIFACTS")
        mkdir -p "$ARTIFACTS"
    fi

    SECURITY=() ADDRESS=http://$HOST:$PORT
    case $HOST in
        127.0.0.1 | localhost | ::1) ;;
        *) open_up ;;
    esac
    echo "backend store: $backend" >&2
    echo "artifacts:     $ARTIFACTS" >&2
    echo "stages log here with MLFLOW_TRACKING_URI=$ADDRESS" >&2
    echo "(Ctrl-C stops MLflow; scripts/server.sh stop stops PostgreSQL)" >&2
    exec "$python" -m mlflow server --backend-store-uri "$backend" --artifacts-destination "$ARTIFACTS" \
        --serve-artifacts --host "$HOST" --port "$PORT" "${SECURITY[@]+"${SECURITY[@]}"}" "$@"
}

case ${1:-} in
    stop) stop_postgres ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' ;;
    *) main "$@" ;;
esac
