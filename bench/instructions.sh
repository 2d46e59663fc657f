#!/usr/bin/env bash
# bench/instructions.sh - user-space instructions per request of intermission
# builds, counted by valgrind's callgrind: a figure that does not move with the
# machine's load, for changes too small for wrk to see on a noisy 2-core box.
#
# Each build serves the scenario (bench/conf/*.in, as run.sh and ab.sh) under
# callgrind; a warm-up of WARMUP requests, then the counters are zeroed, REQUESTS
# requests are sent with h2load over TLS (HTTP/2 with 10 streams a connection, or
# HTTP/1.1), the counters are dumped and divided by REQUESTS. Instructions in
# OpenSSL, nghttp2 and the allocator count too; the kernel's do not. The load
# is light under callgrind (threads run one at a time), so batching differs
# from a saturated run: compare builds with each other, not with wrk's figures.
#
# Usage:  bench/instructions.sh OLD_BINARY NEW_BINARY [...]
#         SCENARIO=proxy PROTOCOL=h2 REQUESTS=20000 WARMUP=5000 bench/instructions.sh old new
#         bench/instructions.sh build/release/intermission nginx haproxy   (against the peers)
# SCENARIO page|proxy (proxy), PROTOCOL h2|http1.1 (h2), CONNS (64),
# CALLGRIND_OPTIONS (none; --cache-sim=yes adds simulated cache misses to the dumps).
# Each BINARY may be NAME=PATH. The words nginx and haproxy stand for the peers
# with run.sh's configs (nginx as one process: master_process off). Prints
# "NAME instructions/request N" per server.

set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[ $# -ge 1 ] || { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
SCENARIO="${SCENARIO:-proxy}"
PROTOCOL="${PROTOCOL:-h2}"
REQUESTS="${REQUESTS:-20000}"
WARMUP="${WARMUP:-5000}"
CONNS="${CONNS:-64}"
WORKERS="${WORKERS:-2}"
OUT="${OUT:-$BENCH/results/instructions-$(date -u +%Y%m%dT%H%M%SZ)}"
case "$SCENARIO" in page | proxy) ;; *) die "SCENARIO is page or proxy, not $SCENARIO" ;; esac
case "$PROTOCOL" in h2) STREAMS=10 ALPN=h2 ;; http1.1) STREAMS=1 ALPN=http/1.1 ;;
    *) die "PROTOCOL is h2 or http1.1, not $PROTOCOL" ;; esac
for tool in valgrind callgrind_control h2load curl ss openssl; do
    command -v "$tool" >/dev/null || die "$tool is needed (valgrind and nghttp2-client are Debian packages)"
done
[ "$SCENARIO" = proxy ] && { command -v nginx >/dev/null || die "the proxy scenario's backend is nginx"; }
for peer in nginx haproxy; do
    case " $* " in *" $peer "*) command -v "$peer" >/dev/null || die "$peer is not installed" ;; esac
done

TLS=1
prepare_run
[ "$SCENARIO" = proxy ] && start_backend

load() { h2load -t1 -c"$CONNS" -m"$STREAMS" -n"$1" --npn-list "$ALPN" "$URL"; }

for arg in "$@"; do
    name="${arg%%=*}" path="${arg#*=}"
    [ "$name" = "$arg" ] && name=$(basename "$path")
    prefix="$OUT/callgrind-$name"
    rm -f "$prefix".*  # a reused OUT: only this run's dumps may be summed
    # shellcheck disable=SC2206  # CALLGRIND_OPTIONS is words, e.g. --cache-sim=yes
    callgrind=(valgrind --tool=callgrind ${CALLGRIND_OPTIONS:-} --callgrind-out-file="$prefix.%p")
    case "$arg" in
    nginx)
        # One process (master_process off) needs one listening socket: with the two
        # workers' reuseport sockets, half the connections would wait on the other one.
        conf="$RUN/conf/nginx-$SCENARIO-one.conf"
        WORKERS=1 render "$BENCH/conf/nginx-$SCENARIO.conf.in" "$conf"
        "${callgrind[@]}" nginx -p "$RUN/" -e "$RUN/logs/nginx.err" -c "$conf" \
            -g 'daemon off; master_process off;' >"$RUN/logs/$name.log" 2>&1 & ;;
    haproxy)
        "${callgrind[@]}" haproxy -db -f "$(conf_of haproxy "$SCENARIO")" >"$RUN/logs/$name.log" 2>&1 & ;;
    *)
        [ -x "$path" ] || die "$path is not an executable"
        cp "$path" "$RUN/bin/$name" || die "cannot copy $path"
        "${callgrind[@]}" "$RUN/bin/$name" serve --config "$(conf_of intermission "$SCENARIO")" \
            >"$RUN/logs/$name.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 300); do curl -sk -o /dev/null --max-time 2 "$URL" && break; sleep 0.2; done
    load "$WARMUP" >"$OUT/$name-warmup.txt" 2>&1
    callgrind_control --zero "$SERVER_PID" >/dev/null 2>&1
    load "$REQUESTS" >"$OUT/$name.txt" 2>&1
    callgrind_control --dump "$SERVER_PID" >/dev/null 2>&1
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    # Done with an answer, whatever its status (the page scenario's is 503), and none
    # errored or timed out.
    answered=$(awk '/^requests: /{ print $6 - $12 - $14 }' "$OUT/$name.txt")
    [ "$answered" = "$REQUESTS" ] || die "$name: $answered of $REQUESTS requests answered (see $OUT/$name.txt)"
    total=$(cat "$prefix".*.1 2>/dev/null | awk '/^totals:/ { s += $2 } END { print s + 0 }')
    [ "$total" -gt 0 ] || die "$name: no callgrind dump in $OUT"
    printf '%-14s instructions/request %d  (%s, %s, %d requests)\n' "$name" $((total / REQUESTS)) \
        "$SCENARIO" "$PROTOCOL" "$REQUESTS"
done
