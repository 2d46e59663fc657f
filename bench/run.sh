#!/usr/bin/env bash
# bench/run.sh - intermission against nginx and HAProxy, side by side, in one run.
#
# Scenarios:
#   page   every request gets bench/maintenance.html as HTTP 503
#          (text/html; charset=utf-8, Cache-Control: no-store, Retry-After: 120, ETag)
#   proxy  every request is forwarded to one shared backend (one nginx worker
#          answering 200 "hello") over keep-alive upstream connections
#
# Each round, for each scenario and client, each server in turn (the order
# rotates every round) is started from a config generated from bench/conf/*.in,
# checked with one request (preflight), warmed up, then measured with
#   wrk -t1 -c<C> -d<DURATION>s --latency
# for each C in CONNS, and stopped. Recorded per measurement: requests/s,
# p50/p99 latency, errors (wrong status class + socket errors), peak RSS
# (VmHWM summed over the server's processes) and the server's own CPU time
# (utime+stime from /proc) per request. The summary takes the median over
# rounds and compares intermission with each peer against the targets.
#
# TLS=1: the same over HTTPS (a self-signed ECDSA P-256 certificate made at
# start, the same for every server; the configs get the bench/conf/*-tls.*
# pieces), measured with two clients, each in its own server run:
#   wrk    HTTP/1.1 over TLS   wrk -t1 -c<C> -d<DURATION>s --latency https://...
#   h2load HTTP/2 over TLS     h2load -t1 -c<C> -m<H2_STREAMS> -D<DURATION> --npn-list h2
#                              --log-file ... https://...   (p50/p99 from the log)
# A server that does not negotiate h2 by ALPN is "not measured" for h2load,
# with h2load's words, and the run goes on.
#
# Usage:   bench/run.sh                                  (defaults: 7 minutes at least, up to
#                                                        30 on a busy machine)
#          ROUNDS=1 DURATION=3 CONNS=64 bench/run.sh     (quick smoke run)
#          TLS=1 bench/run.sh                            (HTTPS: wrk and h2load; about twice as long)
# Knobs (environment):
#   ROUNDS=3  DURATION=8 (s)  WARMUP=2 (s)  CONNS="64 256"  WRK_THREADS=1 (h2load's -t too)
#   SCENARIOS="page proxy"  SERVERS="intermission nginx haproxy"  WORKERS=2
#   TLS=0  CLIENTS="wrk" ("wrk h2load" with TLS=1)  H2_STREAMS=10 (h2load -m)
#   INTERMISSION_BIN=build/release/intermission (relative to the repository)
#   PORT, BACKEND_PORT: the 127.0.0.1 ports (default: free ports picked at start)
#   OUT=bench/results/<UTC timestamp>
#   QUIET_PCT=15 QUIET_MAX=20: before each server start, wait up to QUIET_MAX s
#     for the machine to be at most QUIET_PCT % busy
#   RETRIES=2: a measurement during which processes outside the benchmark used
#     more than 10% of the machine is repeated up to RETRIES times; the
#     attempt with the least other load is kept
#
# Output in $OUT: summary.md (also printed), results.csv (one row per
# measurement), skipped.csv (server runs that could not be measured, and
# why), env.txt (machine, versions, parameters), raw/ (client output, preflight
# headers), run/ (generated configs, server logs, the TLS certificate); in TLS
# runs tls.csv (protocol, cipher, ALPN, resumption each server negotiated).

set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH")"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
WARMUP="${WARMUP:-2}"
CONNS="${CONNS:-64 256}"
WRK_THREADS="${WRK_THREADS:-1}"
SCENARIOS="${SCENARIOS:-page proxy}"
SERVERS="${SERVERS:-intermission nginx haproxy}"
WORKERS="${WORKERS:-2}"
TLS="${TLS:-0}"
if [ "$TLS" = 1 ]; then CLIENTS="${CLIENTS:-wrk h2load}"; else CLIENTS="${CLIENTS:-wrk}"; fi
H2_STREAMS="${H2_STREAMS:-10}"
INTERMISSION_BIN="${INTERMISSION_BIN:-build/release/intermission}"
case "$INTERMISSION_BIN" in /*) ;; *) INTERMISSION_BIN="$REPO/$INTERMISSION_BIN" ;; esac
QUIET_PCT="${QUIET_PCT:-15}"
QUIET_MAX="${QUIET_MAX:-20}"
RETRIES="${RETRIES:-2}"
OUT="${OUT:-$BENCH/results/$([ "$TLS" = 1 ] && echo tls-)$(date -u +%Y%m%dT%H%M%SZ)}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
RUN="$OUT/run"                   # generated configs, logs, nginx temp dirs
TLS_DIR="$RUN/tls"               # TLS runs: the certificate and key
PAGES="$RUN/pages"               # the page store / document root: maintenance.html only
CLK_TCK="$(getconf CLK_TCK)"
# Does a task's stime include the irq/softirq ticks it was interrupted by?
# Yes with tick-based accounting, unless CONFIG_IRQ_TIME_ACCOUNTING=y (used
# to tell other load apart from the benchmark's own, see lib.sh other_cpu)
IRQ_IN_TASK=1
{ zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null; } |
    grep -q '^CONFIG_IRQ_TIME_ACCOUNTING=y' && IRQ_IN_TASK=0
# HAProxy has no ETag of its own: give it a hash of the page
PAGE_ETAG="\"$(sha256sum "$BENCH/maintenance.html" | cut -c1-16)\""

SERVER_PID=""; BACKEND_PID=""; CLIENT_PID=""
T0=$(date +%s)

cleanup() {
    # the client first (its subshell then reaps it), then the server and the backend
    [ -n "$CLIENT_PID" ] && for p in $(ps -o pid= --ppid "$CLIENT_PID"); do stop_pid "$p"; done
    stop_pid "$CLIENT_PID"; stop_pid "$SERVER_PID"; stop_pid "$BACKEND_PID"
    CLIENT_PID=""; SERVER_PID=""; BACKEND_PID=""
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ checks

case "$TLS" in 0|1) ;; *) die "TLS is 0 or 1, not '$TLS'" ;; esac
for t in $CLIENTS curl nginx haproxy ss ps awk sed sha256sum python3 $([ "$TLS" = 1 ] && echo openssl timeout); do
    command -v "$t" >/dev/null || die "$t is not installed"
done
for c in $CLIENTS; do
    case "$c" in
    wrk) ;;
    h2load) [ "$TLS" = 1 ] || die "h2load measures HTTP/2 over TLS: run with TLS=1" ;;
    *) die "unknown client '$c' (wrk h2load)" ;;
    esac
done
for s in $SERVERS; do
    case "$s" in intermission|nginx|haproxy) ;; *) die "unknown server '$s' (intermission nginx haproxy)" ;; esac
done
for s in $SCENARIOS; do
    case "$s" in page|proxy) ;; *) die "unknown scenario '$s' (page proxy)" ;; esac
done
case " $SERVERS " in *" intermission "*)
    [ -x "$INTERMISSION_BIN" ] || die "$INTERMISSION_BIN not found: build it with 'bash scripts/build.sh release' or set INTERMISSION_BIN" ;;
esac

# wrk -c256 plus the servers' sockets need more than the usual 1024 descriptors
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=65536
ulimit -n "$hard" 2>/dev/null || true

PORT="${PORT:-$(pick_port)}" || die "no free port"
BACKEND_PORT="${BACKEND_PORT:-$(pick_port "$PORT")}" || die "no free port"
[ "$PORT" != "$BACKEND_PORT" ] || die "PORT and BACKEND_PORT are the same"
port_in_use "$PORT" && die "127.0.0.1:$PORT is in use"
port_in_use "$BACKEND_PORT" && die "127.0.0.1:$BACKEND_PORT is in use"
HTTP_PORT=$PORT SCHEME=http
if [ "$TLS" = 1 ]; then
    HTTP_PORT=$(pick_port "$PORT" "$BACKEND_PORT") || die "no free port"
    SCHEME=https
fi
URL="$SCHEME://127.0.0.1:$PORT/"

# ------------------------------------------------------------------ setup

mkdir -p "$OUT/raw" "$RUN/conf" "$RUN/logs" "$RUN/nginx-tmp" "$PAGES"
cp "$BENCH/maintenance.html" "$PAGES/"
# run a copy, so that a rebuild during the run does not change the binary under test
case " $SERVERS " in *" intermission "*)
    cp "$INTERMISSION_BIN" "$RUN/intermission" || die "cannot copy $INTERMISSION_BIN"
    INTERMISSION_SRC="$INTERMISSION_BIN"; INTERMISSION_BIN="$RUN/intermission" ;;
esac
if [ "$TLS" = 1 ]; then
    make_cert "$TLS_DIR" || die "openssl could not make the certificate (see $TLS_DIR/openssl.log)"
fi
render_confs

{
    echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "kernel: $(uname -r)"
    echo "cpus: $(nproc) ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
    echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "irq_time_in_task_stime: $IRQ_IN_TASK (1: no CONFIG_IRQ_TIME_ACCOUNTING, so CPU µs/req includes softirq work run in the server's context)"
    echo "params: ROUNDS=$ROUNDS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=\"$CONNS\" WRK_THREADS=$WRK_THREADS WORKERS=$WORKERS SERVERS=\"$SERVERS\" SCENARIOS=\"$SCENARIOS\" TLS=$TLS CLIENTS=\"$CLIENTS\"$([ "$TLS" = 1 ] && echo " H2_STREAMS=$H2_STREAMS")"
    echo "ports: server 127.0.0.1:$PORT ($SCHEME)  backend 127.0.0.1:$BACKEND_PORT$([ "$TLS" = 1 ] && echo "  intermission's unused plain listener 127.0.0.1:$HTTP_PORT")"
    echo "page: $(wc -c <"$BENCH/maintenance.html") bytes, etag for haproxy $PAGE_ETAG"
    echo "intermission: ${INTERMISSION_SRC:-not run} ($("$INTERMISSION_BIN" --version 2>&1 | head -1), built $(date -u -r "${INTERMISSION_SRC:-$INTERMISSION_BIN}" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null))"
    echo "intermission_commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ has uncommitted changes)')"
    echo "nginx: $(nginx -v 2>&1)"
    echo "haproxy: $(haproxy -v 2>&1 | head -1)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    if [ "$TLS" = 1 ]; then
        echo "h2load: $(h2load --version 2>&1 | head -1)"
        echo "openssl: $(openssl version)"
        echo "certificate: $(openssl x509 -in "$TLS_DIR/cert.pem" -noout -subject -ext subjectAltName 2>/dev/null | tr '\n' ' ')($(openssl x509 -in "$TLS_DIR/cert.pem" -noout -text | grep -m1 -oE 'ASN1 OID: [a-z0-9]+|NIST CURVE: [A-Z0-9-]+'), self-signed)"
    fi
} >"$OUT/env.txt"
echo "$CSV_HEADER" >"$OUT/results.csv"
echo "round,scenario,client,server,reason" >"$OUT/skipped.csv"
[ "$TLS" = 1 ] && echo "$TLS_CSV_HEADER" >"$OUT/tls.csv"
log "results -> $OUT  (server port $PORT, backend port $BACKEND_PORT)"

skip() {   # skip ROUND SCENARIO CLIENT SERVER REASON  (paths shown relative to $OUT)
    local why="${5//$OUT\//}"
    log "  SKIPPED $4 $2 ($3): $why"
    echo "$1,$2,$3,$4,\"$(echo "$why" | tr '"' "'")\"" >>"$OUT/skipped.csv"
}

# ------------------------------------------------------------------ rounds

start_backend
log "backend: nginx (1 worker) on 127.0.0.1:$BACKEND_PORT, PID $BACKEND_PID"

for round in $(seq 1 "$ROUNDS"); do
    for sc in $SCENARIOS; do
      for client in $CLIENTS; do
        for server in $(rotate "$SERVERS" $((round - 1))); do
            if ! why=$(config_check "$server" "$sc"); then
                skip "$round" "$sc" "$client" "$server" "$why"; continue
            fi
            q=$(wait_quiet)
            log "round $round/$ROUNDS  $sc  $client  $server  (machine ${q}% busy before start)"
            start_server "$server" "$sc"
            if ! wait_up "$SERVER_PID" "$PORT" "$SCHEME"; then
                skip "$round" "$sc" "$client" "$server" "did not come up (see run/logs/$server-$sc.log)"
                stop_pid "$SERVER_PID"; SERVER_PID=""; continue
            fi
            if [ "$TLS" = 1 ] && [ "$client" = "${CLIENTS%% *}" ]; then   # once a server run and round
                tls_row=$(tls_info "$server" "$sc" "$round"); echo "$tls_row" >>"$OUT/tls.csv"
                log "  TLS: $(echo "$tls_row" | cut -d, -f4- | tr ',' ' ')"
            fi
            pf=$(preflight "$server" "$sc" "$round" "$client")
            case "$pf" in
            fail*) skip "$round" "$sc" "$client" "$server" "preflight $pf"
                   stop_pid "$SERVER_PID"; SERVER_PID=""; continue ;;
            warn*) log "  preflight $pf (measured anyway, flagged in the summary)" ;;
            esac
            client_cmd "$client" "${CONNS%% *}" "$WARMUP" >"$OUT/raw/warmup-r$round-$sc-$client-$server.txt" 2>&1 ||
                log "  warm-up: $client exited with status $? (measured anyway)"
            for c in $CONNS; do
                # measure; when other load disturbed it, wait for quiet and measure
                # again (up to RETRIES times), then keep the least disturbed attempt
                attempt=1; best_row=""; best_other=""; failed=""
                while :; do
                    measure "$round" "$sc" "$server" "$client" "$c" "$pf" "$attempt" || { failed=$MEASURE_ERROR; break; }
                    if [ -z "$best_row" ] || awk -v a="$OTHER" -v b="$best_other" 'BEGIN { exit !(a < b) }'; then
                        best_row=$ROW; best_other=$OTHER
                    fi
                    [ "$DISTURBED" = 0 ] || [ "$attempt" -gt "$RETRIES" ] && break
                    log "    disturbed by other load; waiting for quiet, then measuring again"
                    wait_quiet >/dev/null
                    attempt=$((attempt + 1))
                done
                if [ -z "$best_row" ]; then skip "$round" "$sc" "$client" "$server" "c=$c: $failed"; continue; fi
                [ "$attempt" -gt 1 ] && log "    kept attempt $(echo "$best_row" | awk -F, '{ print $NF }') (least other load)"
                echo "$best_row" >>"$OUT/results.csv"
            done
            stop_pid "$SERVER_PID"; SERVER_PID=""
            sleep 1
        done
      done
    done
done
cleanup

# ------------------------------------------------------------------ summary

T1=$(date +%s)
python3 "$BENCH/summarize.py" --out "$OUT" --servers "$SERVERS" --scenarios "$SCENARIOS" \
    --clients "$CLIENTS" --tls "$TLS" --h2-streams "$H2_STREAMS" \
    --conns "$CONNS" --rounds "$ROUNDS" --duration "$DURATION" --wrk-threads "$WRK_THREADS" \
    --seconds $((T1 - T0)) >"$OUT/summary.md" || die "summary failed"
cat "$OUT/summary.md"
rm -rf "$RUN/nginx-tmp" "$RUN/intermission"
log "done in $((T1 - T0)) s; files in $OUT"
