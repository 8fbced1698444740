# shellcheck shell=bash
# scripts/lib.sh — shared helpers for Landfall's shell tooling.
#
# Source it, do not execute it:
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   landfall_log / landfall_warn / landfall_die   logging, always to stderr
#   landfall_cache_dir                            ${LANDFALL_CACHE:-$HOME/.cache/landfall} (created)
#   landfall_repo_root                            absolute path of the repository root
#   landfall_sha256_file FILE                     hex sha256 of FILE
#   port_open HOST PORT                           0 if something accepts TCP connections there
#   wait_for_port HOST PORT TIMEOUT_S [LOG] [PID] wait until HOST:PORT accepts connections
#   landfall_tail_log FILE [N]                    last N lines of FILE to stderr, indented
#   landfall_pid_alive PID [NAME]                 0 if PID runs and (optionally) its cmdline mentions NAME
#   landfall_emit_export NAME VALUE               print `export NAME=VALUE` (shell-quoted) to stdout
#
# Nothing here writes to stdout except landfall_cache_dir, landfall_repo_root,
# landfall_sha256_file (their results) and landfall_emit_export, so scripts can keep
# stdout clean for `eval "$(script)"`.

if [[ -n "${_LANDFALL_LIB_SOURCED:-}" ]]; then
    return 0
fi
_LANDFALL_LIB_SOURCED=1

_landfall_ts() { date +%H:%M:%S; }

landfall_log() {
    printf '[landfall %s] %s\n' "$(_landfall_ts)" "$*" >&2
}

landfall_warn() {
    printf '[landfall %s] WARNING: %s\n' "$(_landfall_ts)" "$*" >&2
}

landfall_die() {
    printf '[landfall %s] ERROR: %s\n' "$(_landfall_ts)" "$*" >&2
    exit 1
}

landfall_cache_dir() {
    local dir="${LANDFALL_CACHE:-${HOME:?HOME is not set}/.cache/landfall}"
    mkdir -p "$dir" || landfall_die "cannot create cache dir $dir"
    printf '%s\n' "$dir"
}

landfall_repo_root() {
    # lib.sh lives in <root>/scripts/
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
}

landfall_sha256_file() {
    local file="$1"
    [[ -r "$file" ]] || landfall_die "cannot read $file"
    sha256sum "$file" | cut -d' ' -f1
}

# port_open HOST PORT — one connection attempt, at most 1 s.
port_open() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016  # $0/$1 are expanded by the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

landfall_tail_log() {
    local file="$1" n="${2:-40}"
    if [[ -s "$file" ]]; then
        printf '  ---- last %s lines of %s ----\n' "$n" "$file" >&2
        tail -n "$n" "$file" | sed 's/^/  | /' >&2
        printf '  ---- end of %s ----\n' "$file" >&2
    else
        printf '  (log %s is empty or missing)\n' "$file" >&2
    fi
}

# landfall_pid_alive PID [NAME] — PID is running (and not a zombie); when NAME is
# given, the process's command line must also contain NAME (guards against PID reuse).
landfall_pid_alive() {
    local pid="$1" name="${2:-}"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local state
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]] || return 1
    if [[ -n "$name" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$name" || return 1
    fi
    return 0
}

# wait_for_port HOST PORT TIMEOUT_S [LOGFILE] [PID]
# Polls HOST:PORT until it accepts a TCP connection. Fails (return 1) with a clear
# message after TIMEOUT_S seconds, or as soon as PID (if given) has exited; in both
# cases the tail of LOGFILE (if given) is printed to stderr.
wait_for_port() {
    local host="$1" port="$2" timeout_s="$3" log="${4:-}" pid="${5:-}"
    local deadline=$((SECONDS + timeout_s))
    while true; do
        if port_open "$host" "$port"; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! landfall_pid_alive "$pid"; then
            printf '[landfall %s] ERROR: process %s exited before %s:%s accepted connections\n' \
                "$(_landfall_ts)" "$pid" "$host" "$port" >&2
            [[ -n "$log" ]] && landfall_tail_log "$log"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            printf '[landfall %s] ERROR: timed out after %ss waiting for %s:%s to accept connections\n' \
                "$(_landfall_ts)" "$timeout_s" "$host" "$port" >&2
            [[ -n "$log" ]] && landfall_tail_log "$log"
            return 1
        fi
        sleep 0.2
    done
}

landfall_emit_export() {
    local name="$1" value="$2"
    printf 'export %s=%q\n' "$name" "$value"
}
