#!/usr/bin/env bash
# deploy/dev/down.sh — stop the services deploy/dev/up.sh started (by their pidfiles
# in ${LANDFALL_DEV_DIR:-${LANDFALL_CACHE:-$HOME/.cache/landfall}/dev}). Idempotent:
# services that are not running are skipped, and processes up.sh did not start are
# never touched. Data (tansu.db, logs) is kept unless --purge is given, which
# deletes the whole dev dir afterwards.
#
# Options:
#   --purge   also delete $LANDFALL_DEV_DIR (only if up.sh created it)
# Env:
#   LANDFALL_STOP_TIMEOUT_S  seconds to wait after SIGTERM before SIGKILL (default 10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

purge=0
for arg in "$@"; do
    case "$arg" in
        --purge) purge=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
            exit 0
            ;;
        *) landfall_die "unknown argument: $arg (try --help)" ;;
    esac
done

CACHE="${LANDFALL_CACHE:-${HOME:?}/.cache/landfall}"
DEV="${LANDFALL_DEV_DIR:-$CACHE/dev}"
STOP_TIMEOUT_S="${LANDFALL_STOP_TIMEOUT_S:-10}"

if [[ ! -d "$DEV" ]]; then
    landfall_log "nothing to stop: $DEV does not exist"
    exit 0
fi

# stop NAME MATCH — MATCH must occur in the process's command line (PID-reuse guard).
stop() {
    local name="$1" match="$2" pidfile="$DEV/$1.pid" pid
    if [[ ! -f "$pidfile" ]]; then
        landfall_log "$name: not running (no pidfile)"
        return 0
    fi
    pid="$(cat "$pidfile")"
    if ! landfall_pid_alive "$pid" "$match"; then
        landfall_log "$name: not running (stale pidfile, pid $pid)"
        rm -f "$pidfile"
        return 0
    fi
    landfall_log "$name: stopping pid $pid"
    # up.sh starts each service as a session leader: signal its whole process group
    # when it leads one, so helper children go too.
    local target="$pid"
    if [[ "$(ps -o pgid= -p "$pid" | tr -d ' ')" == "$pid" ]]; then
        target="-$pid"
    fi
    kill -TERM -- "$target" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while landfall_pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            landfall_warn "$name: pid $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s, sending SIGKILL"
            kill -KILL -- "$target" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    landfall_pid_alive "$pid" && landfall_die "$name: pid $pid is still running"
    rm -f "$pidfile"
    landfall_log "$name: stopped"
}

stop gcs landfall-fakegcs
stop s3 moto_server
stop kafka tansu

if [[ $purge == 1 ]]; then
    if [[ -f "$DEV/.landfall-dev" ]]; then
        rm -rf "$DEV"
        landfall_log "purged $DEV"
    else
        landfall_die "refusing to purge $DEV: it has no .landfall-dev marker (not created by up.sh)"
    fi
else
    landfall_log "data kept in $DEV (use --purge to delete it)"
fi
