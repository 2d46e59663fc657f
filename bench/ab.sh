#!/usr/bin/env bash
# bench/ab.sh - two (or more) intermission binaries against each other, and
# optionally HAProxy, interleaved, with finer latency percentiles than run.sh.
#
# run.sh answers "where do we stand against the peers"; this answers "did this
# change help": the same scenario configs (bench/conf/*.in), each server started
# fresh per measurement, the order the same every round so that slow drift of
# the machine hits every build alike, and wrk's p90/p99/p99.9 from a Lua done().
#
# Usage:  bench/ab.sh OLD_BINARY NEW_BINARY [...]
#         ROUNDS=4 SCENARIO=page CONNS=64 DURATION=5 HAPROXY=1 bench/ab.sh old new
#         TLS=1 CLIENT=h2load H2_STREAMS=10 bench/ab.sh old new   (HTTPS; HTTP/2)
# Each BINARY may be NAME=PATH to give it a name in the output (default: the
# file's name). A binary is copied at start, so rebuilding meanwhile is safe.
# Prints one line per measurement, then the min-max per build; the raw wrk
# output stays in $OUT (default bench/results/ab-<UTC timestamp>).

set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

[ $# -ge 2 ] || { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
ROUNDS="${ROUNDS:-4}"
SCENARIO="${SCENARIO:-page}"
CONNS="${CONNS:-64}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-1}"
WORKERS="${WORKERS:-2}"
HAPROXY="${HAPROXY:-0}"
TLS="${TLS:-0}"
CLIENT="${CLIENT:-wrk}"
H2_STREAMS="${H2_STREAMS:-10}"
WRK_THREADS=1
OUT="${OUT:-$BENCH/results/ab-$(date -u +%Y%m%dT%H%M%SZ)}"
case "$SCENARIO" in page | proxy) ;; *) die "SCENARIO is page or proxy, not $SCENARIO" ;; esac
case "$TLS" in 0 | 1) ;; *) die "TLS is 0 or 1, not $TLS" ;; esac
case "$CLIENT" in wrk) ;; h2load) [ "$TLS" = 1 ] || die "CLIENT=h2load needs TLS=1" ;; *) die "CLIENT is wrk or h2load, not $CLIENT" ;; esac
for tool in "$CLIENT" curl ss $([ "$TLS" = 1 ] && echo openssl); do command -v "$tool" >/dev/null || die "$tool is needed"; done
[ "$HAPROXY" = 1 ] && { command -v haproxy >/dev/null || die "HAPROXY=1 needs haproxy"; }
[ "$SCENARIO" = proxy ] && { command -v nginx >/dev/null || die "the proxy scenario's backend is nginx"; }

prepare_run
ACCEPT="Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
cat >"$RUN/percentiles.lua" <<'EOF'
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
done = function(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do p[#p + 1] = string.format("%.2f", latency:percentile(q) / 1000) end
  io.write(string.format("AB %d %.0f %s\n", summary.requests, summary.requests / (summary.duration / 1e6),
                         table.concat(p, " ")))
end
EOF

# h2load_ab_line OUTPUT LOG: the "AB requests rps p50 p90 p99 p99.9" line (ms) the wrk
# script prints, from h2load's summary and its per-request times (failed streams left out)
h2load_ab_line() {
    local rps requests
    rps=$(awk '/^finished in /{ print $4 }' "$1")
    requests=$(awk '/^requests: /{ print $8 }' "$1")
    awk -F'\t' '$2 != -1 { print $3 }' "$2" | sort -n | awk -v rps="$rps" -v n="$requests" '
        { v[NR] = $1 }
        function at(p,  i) { i = int(p * NR); if (i < p * NR) i++; return v[i < 1 ? 1 : i] / 1000 }
        END { if (NR) printf "AB %d %.0f %.2f %.2f %.2f %.2f\n", n, rps, at(0.5), at(0.9), at(0.99), at(0.999) }'
}

# The builds under test: NAME PATH pairs, each binary copied.
declare -a NAMES=() BINS=()
for arg in "$@"; do
    name="${arg%%=*}" path="${arg#*=}"
    [ "$name" = "$arg" ] && name=$(basename "$path")
    [ -x "$path" ] || die "$path is not an executable"
    cp "$path" "$RUN/bin/$name" || die "cannot copy $path"
    NAMES+=("$name") BINS+=("$RUN/bin/$name")
done
[ "$HAPROXY" = 1 ] && NAMES+=("haproxy") BINS+=("")

[ "$SCENARIO" = proxy ] && start_backend

RESULTS="$OUT/results.txt"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    for i in "${!NAMES[@]}"; do
        name=${NAMES[$i]}
        if [ "$name" = haproxy ] && [ -z "${BINS[$i]}" ]; then
            start_server haproxy "$SCENARIO"
        else
            INTERMISSION_BIN=${BINS[$i]} start_server intermission "$SCENARIO"
        fi
        wait_up "$SERVER_PID" "$PORT" "$SCHEME" || die "$name did not start (see $RUN/logs)"
        client_cmd "$CLIENT" "$CONNS" "$WARMUP" >/dev/null 2>&1
        before=$(cpu_ticks "$SERVER_PID") user_before=$(user_ticks "$SERVER_PID")
        raw="$OUT/raw/$name-$round.txt"
        if [ "$CLIENT" = wrk ]; then
            wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$RUN/percentiles.lua" "$URL" >"$raw"
        else
            client_cmd h2load "$CONNS" "$DURATION" "$raw.log" >"$raw" 2>&1
            h2load_ab_line "$raw" "$raw.log" >>"$raw"
        fi
        after=$(cpu_ticks "$SERVER_PID") user_after=$(user_ticks "$SERVER_PID")
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        read -r _ requests rps p50 p90 p99 p999 < <(grep '^AB ' "$raw") || die "no result in $raw"
        read -r cpu user < <(awk -v t=$((after - before)) -v u=$((user_after - user_before)) \
            -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN { printf "%.2f %.2f", t / hz * 1e6 / n, u / hz * 1e6 / n }')
        printf '%-14s round %d  req/s %7d  p50 %5s  p90 %5s  p99 %5s  p99.9 %5s  CPU %6s us/req  user %6s\n' \
            "$name" "$round" "$rps" "$p50" "$p90" "$p99" "$p999" "$cpu" "$user" | tee -a "$RESULTS"
        sleep 0.3
    done
done

echo
echo "min-max over $ROUNDS rounds ($SCENARIO, $CLIENT$([ "$TLS" = 1 ] && echo " over TLS"), $CONNS connections, ${DURATION}s each):"
for name in "${NAMES[@]}"; do
    awk -v n="$name" '$1 == n {
        for (i = 0; i < 7; i++) { v = i < 6 ? $(5 + 2 * i) : $18; if (!(i in lo) || v < lo[i]) lo[i] = v; if (!(i in hi) || v > hi[i]) hi[i] = v }
        seen = 1
    } END { if (seen) printf "%-14s req/s %s-%s  p90 %s-%s  p99 %s-%s ms  CPU %s-%s us/req (user %s-%s)\n", n, lo[0], hi[0], lo[2], hi[2], lo[3], hi[3], lo[5], hi[5], lo[6], hi[6] }' "$RESULTS"
done
