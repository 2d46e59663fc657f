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
OUT="${OUT:-$BENCH/results/ab-$(date -u +%Y%m%dT%H%M%SZ)}"
case "$SCENARIO" in page | proxy) ;; *) die "SCENARIO is page or proxy, not $SCENARIO" ;; esac
for tool in wrk curl ss; do command -v "$tool" >/dev/null || die "$tool is needed"; done
[ "$HAPROXY" = 1 ] && { command -v haproxy >/dev/null || die "HAPROXY=1 needs haproxy"; }
[ "$SCENARIO" = proxy ] && { command -v nginx >/dev/null || die "the proxy scenario's backend is nginx"; }

RUN="$OUT/run"
PAGES="$RUN/pages"
mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/nginx-tmp" "$RUN/bin" "$PAGES" "$OUT/raw"
cp "$BENCH/maintenance.html" "$PAGES/"
PAGE_ETAG="\"$(sha256sum "$BENCH/maintenance.html" | cut -c1-16)\""
PORT=$(pick_port) || die "no free port"
BACKEND_PORT=$(pick_port "$PORT") || die "no free port"
render_confs
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

SERVER_PID="" BACKEND_PID=""
cleanup() { stop_pid "$SERVER_PID"; stop_pid "$BACKEND_PID"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
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
        wait_up "$SERVER_PID" "$PORT" || die "$name did not start (see $RUN/logs)"
        wrk -t1 -c"$CONNS" -d"${WARMUP}s" -H "$ACCEPT" "http://127.0.0.1:$PORT/" >/dev/null
        before=$(cpu_ticks "$SERVER_PID")
        raw="$OUT/raw/$name-$round.txt"
        wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$RUN/percentiles.lua" "http://127.0.0.1:$PORT/" >"$raw"
        after=$(cpu_ticks "$SERVER_PID")
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        read -r _ requests rps p50 p90 p99 p999 < <(grep '^AB ' "$raw") || die "no result in $raw"
        cpu=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
            'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
        printf '%-14s round %d  req/s %7d  p50 %5s  p90 %5s  p99 %5s  p99.9 %5s  CPU %6s us/req\n' \
            "$name" "$round" "$rps" "$p50" "$p90" "$p99" "$p999" "$cpu" | tee -a "$RESULTS"
        sleep 0.3
    done
done

echo
echo "min-max over $ROUNDS rounds ($SCENARIO, $CONNS connections, ${DURATION}s each):"
for name in "${NAMES[@]}"; do
    awk -v n="$name" '$1 == n {
        for (i = 0; i < 6; i++) { v = $(5 + 2 * i); if (!(i in lo) || v < lo[i]) lo[i] = v; if (!(i in hi) || v > hi[i]) hi[i] = v }
        seen = 1
    } END { if (seen) printf "%-14s req/s %s-%s  p90 %s-%s  p99 %s-%s ms  CPU %s-%s us/req\n", n, lo[0], hi[0], lo[2], hi[2], lo[3], hi[3], lo[5], hi[5] }' "$RESULTS"
done
