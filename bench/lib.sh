# lib.sh - helpers for bench/run.sh (sourced, not run).
#
# Sections: logging, processes, ports and configs, starting servers,
# /proc measurements, the quiet-machine wait, preflight, one wrk measurement.
# Globals read here are set by run.sh: BENCH RUN OUT PORT BACKEND_PORT WORKERS
# PAGES PAGE_ETAG DURATION WRK_THREADS INTERMISSION_BIN CLK_TCK QUIET_PCT QUIET_MAX
# IRQ_IN_TASK.
# shellcheck shell=bash disable=SC2034,SC2086,SC2153
# (SC2086: PID lists are split on purpose; SC2034/SC2153: globals shared with run.sh)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ processes

# PID and all its descendants (by parent PID)
tree_pids() {
    local p=$1 k
    echo "$p"
    for k in $(ps -o pid= --ppid "$p" 2>/dev/null); do tree_pids "$k"; done
}

# running and not a zombie
alive() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop_pid PID: TERM the PID and its descendants, wait until they are gone,
# KILL what is left after 10 s. Only ever the PIDs this script started.
stop_pid() {
    local pid=$1 tree p any=0 _
    [ -n "$pid" ] || return 0
    tree=$(tree_pids "$pid")
    for p in $tree; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 100); do
        any=0
        for p in $tree; do alive "$p" && any=1; done
        [ "$any" = 0 ] && break
        sleep 0.1
    done
    if [ "$any" = 1 ]; then
        log "PID $pid did not stop in 10 s; sending KILL to" $tree
        for p in $tree; do kill -KILL "$p" 2>/dev/null; done
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# ------------------------------------------------------------ ports, configs

port_in_use() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# a free TCP port on 127.0.0.1 in 20000-49999, other than the ones given
pick_port() {
    local p _ x skip
    for _ in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
        skip=0
        for x in "$@"; do [ "$p" = "$x" ] && skip=1; done
        [ "$skip" = 0 ] && ! port_in_use "$p" && { echo "$p"; return 0; }
    done
    return 1
}

# render TEMPLATE OUTFILE: fill in the @NAME@ placeholders of bench/conf/*.in
render() {
    sed -e "s|@PORT@|$PORT|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" \
        -e "s|@WORKERS@|$WORKERS|g" -e "s|@RUN@|$RUN|g" -e "s|@PAGES@|$PAGES|g" \
        -e "s|@ETAG@|$PAGE_ETAG|g" "$1" >"$2"
    if grep -q '@[A-Z_]*@' "$2"; then die "unfilled placeholder in $2"; fi
}

# config file of SERVER for SCENARIO (generated into $RUN/conf by run.sh)
conf_of() {
    case "$1" in
    nginx)        echo "$RUN/conf/nginx-$2.conf" ;;
    haproxy)      echo "$RUN/conf/haproxy-$2.cfg" ;;
    intermission) echo "$RUN/conf/intermission-$2.yaml" ;;
    esac
}

# ----------------------------------------------------------- starting servers

# wait until PID answers on PORT (10 s)
wait_up() {
    local pid=$1 port=$2 _
    for _ in $(seq 1 100); do
        alive "$pid" || return 1
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
        sleep 0.1
    done
    return 1
}

start_backend() {
    nginx -p "$RUN/" -e "$RUN/logs/backend.err" -c "$RUN/conf/backend.nginx.conf" \
        -g 'daemon off;' >>"$RUN/logs/backend.log" 2>&1 &
    BACKEND_PID=$!
    wait_up "$BACKEND_PID" "$BACKEND_PORT" || die "backend did not start (see $RUN/logs/backend.*)"
}

# config_check SERVER SCENARIO: validate the config without serving; prints
# the reason and fails when the server rejects it
config_check() {
    local conf out
    conf=$(conf_of "$1" "$2")
    case "$1" in
    nginx)        out=$(nginx -t -q -p "$RUN/" -e "$RUN/logs/nginx.err" -c "$conf" 2>&1) ;;
    haproxy)      out=$(haproxy -c -q -f "$conf" 2>&1) ;;
    intermission) out=$("$INTERMISSION_BIN" check --config "$conf" 2>&1) ;;
    esac || { echo "config rejected: $(echo "$out" | grep -v '^$' | head -3 | tr '\n' ' ')"; return 1; }
}

# start_server SERVER SCENARIO: sets SERVER_PID
start_server() {
    local conf slog="$RUN/logs/$1-$2.log"
    conf=$(conf_of "$1" "$2")
    case "$1" in
    nginx)        nginx -p "$RUN/" -e "$RUN/logs/nginx.err" -c "$conf" -g 'daemon off;' >>"$slog" 2>&1 & ;;
    haproxy)      haproxy -db -f "$conf" >>"$slog" 2>&1 & ;;
    intermission) "$INTERMISSION_BIN" serve --config "$conf" >>"$slog" 2>&1 & ;;
    *) die "unknown server $1" ;;
    esac
    SERVER_PID=$!
}

# ---------------------------------------------------------- /proc measurements

# sum of a /proc/PID/status field (kB) over PIDs
sum_status_kb() {
    local field=$1 total=0 p v; shift
    for p in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# utime+stime clock ticks summed over PIDs (all threads of each process)
cpu_ticks() {
    local total=0 p v
    for p in "$@"; do
        v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# machine-wide jiffies: "busy(user+nice+system+irq+softirq+steal) total"
sys_jiffies() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# process time of the whole machine in jiffies and, after a space, the
# utime+stime of kernel threads (e.g. ksoftirqd handling loopback traffic).
# Process time is user+nice+system, plus irq+softirq when IRQ_IN_TASK=1: with
# tick-based accounting and no CONFIG_IRQ_TIME_ACCOUNTING, an irq/softirq
# tick is charged to the running task's stime too, but listed apart here.
proc_jiffies() {
    awk -v irq="$IRQ_IN_TASK" '$1 == "cpu" { print $2 + $3 + $4 + (irq ? $7 + $8 : 0); exit }' /proc/stat
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{ pid = $1; sub(/.*\) /, "")   # now $2 = ppid
        if (pid == 2 || $2 == 2) s += $12 + $13 } END { print s + 0 }'
}

# other_cpu BEFORE AFTER OURS_TICKS WRK_S: CPU seconds that processes outside
# the benchmark used between two proc_jiffies readings: the machine's process
# time minus kernel threads, the server, the backend (OURS_TICKS) and wrk.
# Machine-wide, so short-lived processes (compiler jobs, tests) count too.
other_cpu() {
    awk -v a="$1" -v b="$2" -v ours="$3" -v w="${4:-0}" -v t="$CLK_TCK" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        o = ((y[1] - x[1]) - (y[2] - x[2]) - ours) / t - w
        printf "%.2f", (o > 0 ? o : 0) }'
}

# wait (at most QUIET_MAX s) until the machine is at most QUIET_PCT % busy
# over 1 s, so that other work on a shared machine disturbs fewer
# measurements; prints the last busy %
wait_quiet() {
    local waited=0 a b pct
    while :; do
        a=$(sys_jiffies); sleep 1; b=$(sys_jiffies)
        pct=$(awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
            t = y[2] - x[2]; if (t <= 0) t = 1; printf "%.0f", 100 * (y[1] - x[1]) / t }')
        waited=$((waited + 1))
        if [ "$pct" -le "$QUIET_PCT" ] || [ "$waited" -ge "$QUIET_MAX" ]; then
            echo "$pct"; return
        fi
    done
}

count_estab() {   # count_estab "dport = :PORT"
    ss -Htn state established "( $1 )" 2>/dev/null | wc -l
}

# Every request carries a browser's Accept header: intermission's maintenance
# mode answers browsers with the HTML page (and others with text or JSON).
ACCEPT="Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

# ------------------------------------------------------------------ preflight

# preflight SERVER SCENARIO ROUND: one request, checked against the scenario.
# Prints "ok", "warn: ..." (served, but a header is missing: measured and
# flagged) or "fail: ..." (wrong status or body: not measured).
preflight() {
    local f="$OUT/raw/preflight-$1-$2-r$3" code miss=""
    code=$(curl -s -H "$ACCEPT" -D "$f.headers" -o "$f.body" -w '%{http_code}' --max-time 5 \
        "http://127.0.0.1:$PORT/some/path?x=1")
    case "$2" in
    page)
        if [ "$code" != 503 ]; then echo "fail: status $code (want 503)"; return; fi
        cmp -s "$f.body" "$PAGES/maintenance.html" || { echo "fail: body is not maintenance.html"; return; }
        grep -qiE '^content-type: *text/html; *charset=utf-8' "$f.headers" || miss="$miss Content-Type"
        grep -qiE '^cache-control: *no-store' "$f.headers" || miss="$miss Cache-Control"
        grep -qiE '^retry-after: *120' "$f.headers" || miss="$miss Retry-After"
        grep -qiE '^etag: ' "$f.headers" || miss="$miss ETag" ;;
    proxy)
        if [ "$code" != 200 ]; then echo "fail: status $code (want 200)"; return; fi
        [ "$(cat "$f.body")" = hello ] || { echo "fail: body is not the backend's"; return; } ;;
    esac
    rm -f "$f.body"
    if [ -n "$miss" ]; then echo "warn: wrong or missing$miss"; else echo ok; fi
}

# ------------------------------------------------------------ one measurement

# wrk output -> "rps p50_us p99_us requests non2xx3xx connect read write timeout"
parse_wrk() {
    awk '
    function us(v) {
        if (v ~ /us$/) return v + 0
        if (v ~ /ms$/) return v * 1000
        if (v ~ /m$/)  return v * 60000000
        if (v ~ /s$/)  return v * 1000000
        return v + 0
    }
    BEGIN { rps = 0; p50 = 0; p99 = 0; req = 0; non = 0; sc = 0; sr = 0; sw = 0; st = 0 }
    /Requests\/sec:/               { rps = $2 }
    $1 == "50%"                    { p50 = us($2) }
    $1 == "99%"                    { p99 = us($2) }
    / requests in /                { req = $1 }
    /Non-2xx or 3xx responses:/    { non = $NF }
    /Socket errors:/ { gsub(",", ""); sc = $4; sr = $6; sw = $8; st = $10 }
    END { printf "%s %s %s %s %s %s %s %s %s\n", rps, p50, p99, req, non, sc, sr, sw, st }
    ' "$1"
}

CSV_HEADER="round,scenario,server,conns,rps,p50_us,p99_us,requests,wrong_status,sock_connect,sock_read,sock_write,sock_timeout,errors,rss_hwm_kb,cpu_s,cpu_us_per_req,backend_cpu_s,wrk_cpu_s,machine_busy_pct,other_cpu_s,upstream_estab,preflight,attempt"

# measure ROUND SCENARIO SERVER CONNS PREFLIGHT ATTEMPT: one wrk run against
# the running server; sets ROW (one CSV row), OTHER (CPU seconds used
# meanwhile by processes outside the benchmark) and DISTURBED (1 when that
# was more than 10% of the machine)
measure() {
    local round=$1 sc=$2 server=$3 c=$4 pf=$5 attempt=$6
    local raw="$OUT/raw/r$round-$sc-$server-c$c-a$attempt"
    local pids bpids cpu0 cpu1 bcpu0 bcpu1 sys0 sys1 pj0 pj1 up=0 other hwm wrk_cpu
    local rps p50 p99 req non s_c s_r s_w s_t wrong errors
    pids=$(tree_pids "$SERVER_PID")
    bpids=$(tree_pids "$BACKEND_PID")
    pj0=$(proc_jiffies); cpu0=$(cpu_ticks $pids); bcpu0=$(cpu_ticks $bpids); sys0=$(sys_jiffies)

    ( TIMEFORMAT='%R %U %S'; time wrk -t"$WRK_THREADS" -c"$c" -d"${DURATION}s" --latency -H "$ACCEPT" "$URL" \
        >"$raw.txt" 2>"$raw.err" ) 2>"$raw.time" &
    WRK_PID=$!
    sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
    [ "$sc" = proxy ] && up=$(count_estab "dport = :$BACKEND_PORT")
    wait "$WRK_PID"; WRK_PID=""

    cpu1=$(cpu_ticks $pids); bcpu1=$(cpu_ticks $bpids); sys1=$(sys_jiffies); pj1=$(proc_jiffies)
    hwm=$(sum_status_kb VmHWM $pids)
    wrk_cpu=$(awk '{ printf "%.2f", $2 + $3 }' "$raw.time" 2>/dev/null)
    other=$(other_cpu "$pj0" "$pj1" $((cpu1 - cpu0 + bcpu1 - bcpu0)) "$wrk_cpu")

    read -r rps p50 p99 req non s_c s_r s_w s_t < <(parse_wrk "$raw.txt")
    # wrk counts statuses >= 400 as "non-2xx or 3xx": the page must be all 503s
    if [ "$sc" = page ]; then wrong=$((req - non)); else wrong=$non; fi
    errors=$((wrong + s_c + s_r + s_w + s_t))

    ROW="$round,$sc,$server,$c,$rps,$p50,$p99,$req,$wrong,$s_c,$s_r,$s_w,$s_t,$errors,$hwm"
    ROW="$ROW,$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" -v r="$req" -v ba="$bcpu0" -v bb="$bcpu1" \
        'BEGIN { printf "%.2f,%.2f,%.2f", (b - a) / t, (r > 0 ? (b - a) / t * 1e6 / r : 0), (bb - ba) / t }')"
    ROW="$ROW,${wrk_cpu:-},$(awk -v a="$sys0" -v b="$sys1" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[2] - x[2]; if (t <= 0) t = 1; printf "%.0f", 100 * (y[1] - x[1]) / t }')"
    ROW="$ROW,$other,$up,$(echo "$pf" | tr ', ' ';_'),$attempt"
    OTHER=$other
    DISTURBED=$(awk -v o="$other" -v n="$(nproc)" -v d="$DURATION" 'BEGIN { print (o > 0.1 * n * d) ? 1 : 0 }')
    log "    c=$c  rps=$rps  p50=${p50}us  p99=${p99}us  errors=$errors  cpu/req=$(echo "$ROW" | cut -d, -f17)us  VmHWM=${hwm}kB  other-load=${other}s"
}
