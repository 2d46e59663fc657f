#!/usr/bin/env bash
# bench/syscalls.sh - system calls and CPU per request of intermission, nginx
# and HAProxy, the same scenarios as run.sh (plain HTTP, or HTTPS with TLS=1): where each server's
# CPU time goes, its own code (user) or the kernel's (system), and how many
# system calls it makes a request. It answers whether a server can spend less
# kernel time than the others: not with the same calls for the same traffic.
#
# Each server is started fresh, warmed up with wrk, then measured while wrk
# runs DURATION seconds: perf counts the system calls its processes enter
# (tracepoints raw_syscalls and syscalls:sys_enter_*; needs root or
# perf_event_paranoid <= 1), /proc gives its user and system CPU time.
#
# Usage:  bench/syscalls.sh
#         SCENARIOS="page proxy" SERVERS="intermission nginx haproxy" CONNS=64 DURATION=5 bench/syscalls.sh
#         TLS=1 bench/syscalls.sh     (HTTPS, HTTP/1.1: wrk over TLS, as run.sh's TLS runs)
# Prints one line per server and scenario: requests/s, syscalls/request (and
# the calls above 0.05 a request), user and system CPU µs/request, and the TCP
# segments the machine sent a request (/proc/net/snmp OutSegs: machine-wide, so
# anything else talking TCP meanwhile counts too; a request and its answer are
# one segment each when no bare ACK or split message adds to them).
# shellcheck disable=SC2034,SC2086
# (SC2034: globals read by lib.sh; SC2086: PID lists are split on purpose)

set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

SCENARIOS="${SCENARIOS:-page proxy}"
SERVERS="${SERVERS:-intermission nginx haproxy}"
CONNS="${CONNS:-64}"
DURATION="${DURATION:-5}"
WORKERS="${WORKERS:-2}"
TLS="${TLS:-0}"
case "$TLS" in 0 | 1) ;; *) die "TLS is 0 or 1, not $TLS" ;; esac
INTERMISSION_BIN="${INTERMISSION_BIN:-$ROOT/build/release/intermission}"
OUT="${OUT:-$BENCH/results/syscalls-$(date -u +%Y%m%dT%H%M%SZ)}"
CLK_TCK=$(getconf CLK_TCK)
for tool in wrk perf curl ss nginx haproxy $([ "${TLS:-0}" = 1 ] && echo openssl); do command -v "$tool" >/dev/null || die "$tool is needed"; done
[ -x "$INTERMISSION_BIN" ] || die "no intermission binary at $INTERMISSION_BIN (build first, or set INTERMISSION_BIN)"
perf stat -e raw_syscalls:sys_enter -x, -o /dev/null -- true 2>/dev/null ||
    die "perf cannot count syscall tracepoints here (run as root, or lower kernel.perf_event_paranoid)"

prepare_run
case " $SCENARIOS " in *" proxy "*) start_backend ;; esac

# The calls servers make on this path; each one counted on its own.
CALLS="read write readv writev recvfrom sendto recvmsg sendmsg sendfile64 epoll_wait epoll_pwait
epoll_ctl accept4 close setsockopt getsockopt futex connect socket"
events="-e raw_syscalls:sys_enter"
for call in $CALLS; do events="$events -e syscalls:sys_enter_$call"; done

# TCP segments sent by the machine so far (OutSegs, found by its name in the Tcp: header line).
tcp_out_segments() {
    awk '$1 == "Tcp:" { if (!n) { for (i = 2; i <= NF; i++) if ($i == "OutSegs") col = i; n = 1 } else print $col }' /proc/net/snmp
}

printf '%-9s %-12s %9s %10s %9s %9s %9s  %s\n' scenario server "req/s" "calls/req" "user µs" "sys µs" "segs/req" "calls a request"
for scenario in $SCENARIOS; do
    for server in $SERVERS; do
        start_server "$server" "$scenario"
        wait_up "$SERVER_PID" "$PORT" "$SCHEME" || die "$server did not start (see $RUN/logs)"
        pids=$(tree_pids "$SERVER_PID")
        wrk -t1 -c"$CONNS" -d2s "$URL" >/dev/null 2>&1
        raw="$OUT/raw/$server-$scenario"
        user0=$(user_ticks $pids) cpu0=$(cpu_ticks $pids) segs0=$(tcp_out_segments)
        perf stat $events -x, -o "$raw.perf" -p "$(echo $pids | tr ' ' ',')" -- sleep "$DURATION" &
        perf_pid=$!
        wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL" >"$raw.wrk" 2>&1
        wait "$perf_pid"
        user1=$(user_ticks $pids) cpu1=$(cpu_ticks $pids) segs1=$(tcp_out_segments)
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        requests=$(awk '/requests in/ { print $1 }' "$raw.wrk")
        [ "${requests:-0}" -gt 0 ] || die "$server: wrk served no requests (see $raw.wrk)"
        awk -F, -v n="$requests" -v d="$DURATION" -v s="$server" -v sc="$scenario" -v t="$CLK_TCK" \
            -v u=$((user1 - user0)) -v c=$((cpu1 - cpu0)) -v g=$((segs1 - segs0)) '
            $3 == "raw_syscalls:sys_enter" { total = $1 }
            $3 ~ /^syscalls:sys_enter_/ && $1 / n >= 0.05 {
                name = $3; sub(/^syscalls:sys_enter_/, "", name)
                list = list sprintf("%s %.2f  ", name, $1 / n) }
            END { printf "%-9s %-12s %9.0f %10.2f %9.2f %9.2f %9.2f  %s\n", sc, s, n / d, total / n,
                         u / t * 1e6 / n, (c - u) / t * 1e6 / n, g / n, list }' "$raw.perf"
    done
done
