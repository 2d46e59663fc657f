#!/usr/bin/env bash
# bench/rules.sh - what a long rule list costs end to end: intermission proxying
# to the shared backend with 1 rule, with 100 path rules sharing the request's
# first path byte (each one's prefix is checked), and with 100 header-only rules
# (every rule is considered). No rule matches the request, so every request
# pays for the whole list. The three configs run interleaved, the order rotated
# every round; the summary gives the median requests/s and CPU per request of
# each and their ratio to the 1-rule config (the issue's target: within 10 %).
#
# Usage:  bench/rules.sh                       (ROUNDS=3 DURATION=6 CONNS=64)
# Knobs:  ROUNDS DURATION WARMUP CONNS WORKERS INTERMISSION_BIN OUT
set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
. "$BENCH/lib.sh"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-1}"
CONNS="${CONNS:-64}"
WORKERS="${WORKERS:-2}"
INTERMISSION_BIN="${INTERMISSION_BIN:-$REPO/build/release/intermission}"
OUT="${OUT:-$BENCH/results/rules-$(date -u +%Y%m%dT%H%M%SZ)}"
RUN="$OUT/run"
PAGES="$RUN/pages"
CONFIGS="rules-1 rules-100-path rules-100-header"
PAGE_ETAG=""  # render() fills it in; unused here
mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/nginx-tmp" "$PAGES"
[ -x "$INTERMISSION_BIN" ] || die "no binary at $INTERMISSION_BIN (bash scripts/build.sh release)"
PORT=$(pick_port) || die "no free port"
BACKEND_PORT=$(pick_port "$PORT") || die "no free port"
SERVER_PID=""; BACKEND_PID=""
trap 'stop_pid "$SERVER_PID"; stop_pid "$BACKEND_PID"' EXIT INT TERM

# config NAME: the intermission config with that rule list
config() {
    local rules=""
    case "$1" in
    rules-1) rules='      - {match: {path: "/api/*"}, fixed: {body: "never"}}' ;;
    rules-100-path)
        rules=$(for i in $(seq 1 100); do
            echo "      - {match: {path: \"/catalog-$i/*\", method: GET}, fixed: {body: \"never\"}}"; done) ;;
    rules-100-header)
        rules=$(for i in $(seq 1 100); do
            echo "      - {match: {header: {name: x-canary, value: \"group-$i\"}}, fixed: {body: \"never\"}}"; done) ;;
    esac
    cat <<EOF
server:
  workers: $WORKERS
  listen: ["127.0.0.1:$PORT"]
  access_log: "off"
target_groups:
  app:
    targets: ["127.0.0.1:$BACKEND_PORT"]
    pool: {max_idle: 512}
sites:
  - name: bench
    default: true
    rules:
$rules
    default_action: {forward: app}
EOF
}

render "$BENCH/conf/backend.nginx.conf.in" "$RUN/conf/backend.nginx.conf"
for c in $CONFIGS; do
    config "$c" >"$RUN/conf/$c.yaml"
    "$INTERMISSION_BIN" check --config "$RUN/conf/$c.yaml" >/dev/null || die "$c: config rejected"
done
start_backend
URL="http://127.0.0.1:$PORT/catalog/item/42"
echo "round,config,rps,cpu_us_per_req,p99_us,errors" >"$OUT/results.csv"
for round in $(seq 1 "$ROUNDS"); do
    for c in $(rotate "$CONFIGS" $((round - 1))); do
        log "round $round/$ROUNDS  $c"
        "$INTERMISSION_BIN" serve --config "$RUN/conf/$c.yaml" >>"$RUN/logs/$c.log" 2>&1 &
        SERVER_PID=$!
        wait_up "$SERVER_PID" "$PORT" || die "$c did not come up (see $RUN/logs/$c.log)"
        wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$URL" >/dev/null 2>&1
        t0=$(cpu_ticks "$SERVER_PID")
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL" >"$RUN/logs/$c-$round.wrk" 2>&1
        t1=$(cpu_ticks "$SERVER_PID")
        read -r rps _p50 p99 req non sc sr sw st < <(parse_wrk "$RUN/logs/$c-$round.wrk")
        cpu=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="$req" 'BEGIN { printf "%.2f", n ? d / hz * 1e6 / n : 0 }')
        echo "$round,$c,$rps,$cpu,$p99,$((non + sc + sr + sw + st))" >>"$OUT/results.csv"
        stop_pid "$SERVER_PID"; SERVER_PID=""
        sleep 1
    done
done
python3 - "$OUT/results.csv" <<'EOF' | tee "$OUT/summary.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r["config"], []).append(r)
med = {c: (statistics.median(float(r["rps"]) for r in rs), statistics.median(float(r["cpu_us_per_req"]) for r in rs),
           statistics.median(float(r["p99_us"]) for r in rs), sum(int(r["errors"]) for r in rs)) for c, rs in by.items()}
base = med["rules-1"]
print("| config | req/s | CPU µs/req | p99 ms | errors | req/s vs 1 rule | CPU/req vs 1 rule |")
print("|---|---|---|---|---|---|---|")
for c in ("rules-1", "rules-100-path", "rules-100-header"):
    rps, cpu, p99, err = med[c]
    print(f"| {c} | {rps:,.0f} | {cpu:.2f} | {p99 / 1000:.2f} | {err} | {rps / base[0]:.3f} | {cpu / base[1]:.3f} |")
EOF
log "done; files in $OUT"
