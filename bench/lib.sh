# lib.sh - helpers for bench/run.sh (sourced, not run).
#
# Sections: logging, processes, ports and configs, TLS, starting servers,
# /proc measurements, the quiet-machine wait, preflight, one measurement
# (wrk, or h2load in TLS runs).
# Globals read here are set by run.sh: BENCH RUN OUT PORT BACKEND_PORT WORKERS
# PAGES PAGE_ETAG DURATION WRK_THREADS INTERMISSION_BIN CLK_TCK QUIET_PCT QUIET_MAX
# IRQ_IN_TASK URL, and for TLS runs (TLS=1) HTTP_PORT H2_STREAMS TLS_DIR.
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

# rotate LIST by N: "a b c" 1 -> "b c a" (the order servers run in, round N+1)
rotate() {
    local -a a; read -r -a a <<<"$1"
    local n=${#a[@]} i
    for ((i = 0; i < n; i++)); do printf '%s ' "${a[$(( (i + $2) % n ))]}"; done
}

# ------------------------------------------------------------ ports, configs

port_in_use() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# a free TCP port on 127.0.0.1 in 10000 up to the ephemeral range, other than the ones given
pick_port() {
    local p _ x skip low
    # Below the kernel's ephemeral range: a port from it can be taken as the
    # source port of some connection while the server that uses it restarts.
    low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$low" -gt 11000 ] 2>/dev/null || low=32768
    for _ in $(seq 1 200); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
        skip=0
        for x in "$@"; do [ "$p" = "$x" ] && skip=1; done
        [ "$skip" = 0 ] && ! port_in_use "$p" && { echo "$p"; return 0; }
    done
    return 1
}

# render TEMPLATE OUTFILE: fill in the @NAME@ placeholders of bench/conf/*.in.
# The listener placeholders differ between plain and TLS runs (TLS=1):
#   @SCHEME@       http / https (HAProxy's X-Forwarded-Proto)
#   @HTTP_PORT@    intermission's server.listen port: PORT, or in TLS runs a
#                  second port nothing is sent to (server.listen may not be
#                  empty; the benchmark's port is then in tls.listen)
#   @NGINX_SSL@    nginx listen parameters: "" / "ssl http2 "
#   @NGINX_TLS@    a comment / the include of the rendered nginx-tls.conf
#   @HAPROXY_SSL@  HAProxy bind parameters: "" / " ssl crt ... alpn h2,http/1.1"
#   @TLS_DIR@      where make_cert wrote the certificate and key
render() {
    local scheme=http http_port=$PORT nginx_ssl="" nginx_tls="# plain HTTP run: no TLS settings" haproxy_ssl=""
    if [ "${TLS:-0}" = 1 ]; then
        scheme=https http_port=$HTTP_PORT nginx_ssl="ssl http2 "
        nginx_tls="include $RUN/conf/nginx-tls.conf;"
        haproxy_ssl=" ssl crt $TLS_DIR/haproxy.pem alpn h2,http/1.1"
    fi
    sed -e "s|@PORT@|$PORT|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" \
        -e "s|@WORKERS@|$WORKERS|g" -e "s|@RUN@|$RUN|g" -e "s|@PAGES@|$PAGES|g" \
        -e "s|@ETAG@|$PAGE_ETAG|g" -e "s|@SCHEME@|$scheme|g" -e "s|@HTTP_PORT@|$http_port|g" \
        -e "s|@NGINX_SSL@|$nginx_ssl|g" -e "s|@NGINX_TLS@|$nginx_tls|g" \
        -e "s|@HAPROXY_SSL@|$haproxy_ssl|g" -e "s|@TLS_DIR@|${TLS_DIR:-}|g" "$1" >"$2"
    if grep -q '@[A-Z_]*@' "$2"; then die "unfilled placeholder in $2"; fi
}

# render_confs: bench/conf/*.in into $RUN/conf; the *-tls.* pieces in TLS
# runs only, where the intermission configs get intermission-tls.yaml's tls
# section (nginx's configs include nginx-tls.conf, see render)
render_confs() {
    local tpl f
    for tpl in "$BENCH"/conf/*.in; do
        case "$tpl" in *-tls.*) [ "${TLS:-0}" = 1 ] || continue ;; esac
        render "$tpl" "$RUN/conf/$(basename "$tpl" .in)"
    done
    [ "${TLS:-0}" = 1 ] || return 0
    for f in "$RUN"/conf/intermission-page.yaml "$RUN"/conf/intermission-proxy.yaml; do
        cat "$RUN/conf/intermission-tls.yaml" >>"$f"
    done
}

# config file of SERVER for SCENARIO (generated into $RUN/conf by run.sh)
conf_of() {
    case "$1" in
    nginx)        echo "$RUN/conf/nginx-$2.conf" ;;
    haproxy)      echo "$RUN/conf/haproxy-$2.cfg" ;;
    intermission) echo "$RUN/conf/intermission-$2.yaml" ;;
    esac
}

# prepare_run: the run directory of ab.sh, instructions.sh and syscalls.sh under
# $OUT (configs, logs, the page), two free ports, with TLS=1 a third and the
# certificate, the configs rendered; sets RUN PAGES PAGE_ETAG PORT BACKEND_PORT
# HTTP_PORT SCHEME URL (and TLS_DIR). Then stops this script's servers on exit.
prepare_run() {
    RUN="$OUT/run"
    PAGES="$RUN/pages"
    mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/nginx-tmp" "$RUN/bin" "$PAGES" "$OUT/raw"
    cp "$BENCH/maintenance.html" "$PAGES/"
    PAGE_ETAG="\"$(sha256sum "$BENCH/maintenance.html" | cut -c1-16)\""
    PORT=$(pick_port) || die "no free port"
    BACKEND_PORT=$(pick_port "$PORT") || die "no free port"
    SCHEME=http HTTP_PORT=$PORT
    if [ "${TLS:-0}" = 1 ]; then
        SCHEME=https TLS_DIR="$RUN/tls"
        HTTP_PORT=$(pick_port "$PORT" "$BACKEND_PORT") || die "no free port"
        make_cert "$TLS_DIR" || die "openssl could not make the certificate (see $TLS_DIR/openssl.log)"
    fi
    URL="$SCHEME://127.0.0.1:$PORT/"
    render_confs
    SERVER_PID="" BACKEND_PID=""
    trap 'stop_pid "$SERVER_PID"; stop_pid "$BACKEND_PID"' EXIT
    trap 'exit 130' INT TERM
}

# ------------------------------------------------------------------ TLS

# make_cert DIR: a self-signed ECDSA P-256 certificate for localhost and
# 127.0.0.1 (cert.pem, key.pem, and haproxy.pem = both, as HAProxy wants it)
make_cert() {
    mkdir -p "$1"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$1/key.pem" -out "$1/cert.pem" >"$1/openssl.log" 2>&1 || return 1
    cat "$1/cert.pem" "$1/key.pem" >"$1/haproxy.pem"
}

# tls_info SERVER SCENARIO ROUND: what the running server negotiates with
# openssl s_client offering h2,http/1.1, and whether a later connection
# resumes an earlier one's session (over http/1.1, with a request, so that
# the TLS 1.3 session ticket arrives before s_client quits). Prints one CSV
# row (see TLS_CSV_HEADER); the s_client output is kept in raw/.
TLS_CSV_HEADER="round,scenario,server,protocol,cipher,key_exchange,signature,alpn,resumed"
tls_info() {
    local f="$OUT/raw/tls-$1-$2-r$3" req=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
    local s_client=(timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost)
    "${s_client[@]}" -alpn h2,http/1.1 </dev/null >"$f.txt" 2>&1
    printf '%s' "$req" | "${s_client[@]}" -alpn http/1.1 -ign_eof -sess_out "$f.session" >"$f.resume1.txt" 2>&1
    printf '%s' "$req" | "${s_client[@]}" -alpn http/1.1 -ign_eof -sess_in "$f.session" >"$f.resume2.txt" 2>&1
    rm -f "$f.session"
    awk -v r="$3" -v sc="$2" -v s="$1" '
        FNR == 1 { file++ }
        file == 1 && /^New, /                { proto = $2; sub(",", "", proto); cipher = $NF }
        file == 1 && /^Server Temp Key:/     { sub(/^Server Temp Key: */, ""); gsub(",", ""); kx = $0 }
        file == 1 && /^Peer signature type:/ { sig = $NF }
        file == 1 && /^ALPN protocol:/       { alpn = $NF }
        file == 1 && /^No ALPN negotiated/   { alpn = "none" }
        file == 2 && /^Reused, /             { resumed = "yes" }
        END { printf "%s,%s,%s,%s,%s,%s,%s,%s,%s\n", r, sc, s, proto, cipher, kx, sig, alpn, (resumed ? resumed : "no") }
    ' "$f.txt" "$f.resume2.txt"
}

# ----------------------------------------------------------- starting servers

# wait_up PID PORT [SCHEME]: wait until PID answers on PORT (10 s)
wait_up() {
    local pid=$1 port=$2 scheme=${3:-http} _
    for _ in $(seq 1 100); do
        alive "$pid" || return 1
        curl -sk -o /dev/null --max-time 1 "$scheme://127.0.0.1:$port/" && return 0
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

# clock ticks from /proc/PID/stat summed over PIDs (all threads of each process); $1 is
# the awk expression over the fields after the command name ($12 utime, $13 stime)
stat_ticks() {
    local expr=$1 total=0 p v
    shift
    for p in "$@"; do
        v=$(awk "{ sub(/.*\\) /, \"\"); print $expr }" "/proc/$p/stat" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
cpu_ticks() { stat_ticks '$12 + $13' "$@"; }  # utime+stime
user_ticks() { stat_ticks '$12' "$@"; }       # utime: the server's own code, not the kernel's

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

# preflight SERVER SCENARIO ROUND [CLIENT]: one request to URL, checked
# against the scenario, over the protocol CLIENT measures with (wrk: HTTP/1.1;
# h2load: HTTP/2, which needs ALPN h2: h2load itself tries first).
# Prints "ok", "warn: ..." (served, but a header is missing: measured and
# flagged) or "fail: ..." (wrong status or body, no HTTP/2: not measured).
preflight() {
    local client=${4:-wrk} f="$OUT/raw/preflight-$1-$2-${4:-wrk}-r$3" code miss="" want=1.1 got
    if [ "$client" = h2load ]; then
        want=2
        h2load -n1 -c1 --npn-list h2 -H "$ACCEPT" "$URL" >"$f.h2load" 2>&1
        grep -q '^Application protocol: h2$' "$f.h2load" || {
            echo "fail: no HTTP/2 (h2load: $(grep -m1 -iE 'no protocol|not negotiated|error|fail|refused' "$f.h2load" || echo 'no h2 application protocol'))"
            return; }
    fi
    read -r code got < <(curl -sk "--http$want" -H "$ACCEPT" -D "$f.headers" -o "$f.body" \
        -w '%{http_code} %{http_version}\n' --max-time 5 "${URL}some/path?x=1")
    [ "$got" = "$want" ] || { echo "fail: answered over HTTP/$got (want HTTP/$want)"; return; }
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

# parse_wrk FILE [SCENARIO]: wrk output ->
#   "rps p50_us p99_us requests wrong connect read write timeout"
# wrong: wrk's non-2xx/3xx count; for the page scenario the responses that
# are not errors (wrk counts statuses >= 400 as "non-2xx or 3xx", and the page
# must be all 503s)
parse_wrk() {
    awk -v scenario="${2:-}" '
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
    END { printf "%s %s %s %s %s %s %s %s %s\n", rps, p50, p99, req, (scenario == "page" ? req - non : non), sc, sr, sw, st }
    ' "$1"
}

# parse_h2load FILE LOG SCENARIO: h2load output and its --log-file -> the
# same fields as parse_wrk. h2load itself reports only min/max/mean/sd of the
# request time, so p50/p99 come from the per-request times in LOG (failed
# streams, status -1, left out). requests = responses (all status classes);
# wrong: page not 5xx, proxy 4xx/5xx; h2load's "errored" streams stand in the
# read column and its "timeout" in the timeout column (no connect/write counts)
parse_h2load() {
    local p50 p99
    read -r p50 p99 < <(awk -F'\t' '$2 != -1 { print $3 }' "$2" | sort -n | awk '
        { v[NR] = $1 }
        function rank(p,  i) { i = int(p * NR); if (i < p * NR) i++; return v[i < 1 ? 1 : i] }
        END { if (NR) print rank(0.50), rank(0.99); else print 0, 0 }')
    awk -v sc="$3" -v p50="$p50" -v p99="$p99" '
    BEGIN { rps = 0; s2 = s3 = s4 = s5 = 0; err = 0; tmo = 0 }
    /^finished in /   { rps = $4 }
    /^requests: /     { err = $12; tmo = $14 }
    /^status codes: / { s2 = $3; s3 = $5; s4 = $7; s5 = $9 }
    END { req = s2 + s3 + s4 + s5
          printf "%s %s %s %s %s 0 %s 0 %s\n", rps, p50, p99, req, (sc == "page" ? s2 + s3 + s4 : s4 + s5), err, tmo }
    ' "$1"
}

# client_cmd CLIENT CONNS SECONDS [LOGFILE]: run the load generator against
# URL: wrk (HTTP/1.1; over TLS without ALPN) or h2load (HTTP/2 only: ALPN h2,
# H2_STREAMS concurrent streams per connection, per-request times to LOGFILE).
# Killed when it is still running CLIENT_GRACE s after SECONDS (exit 124):
# h2load has been seen to spin forever after a short -D on a loaded machine.
CLIENT_GRACE=30
client_cmd() {
    local limit
    limit=$(awk -v d="$3" -v g="$CLIENT_GRACE" 'BEGIN { printf "%d", d + g }')
    case "$1" in
    wrk)    timeout -k 5 "$limit" wrk -t"$WRK_THREADS" -c"$2" -d"${3}s" --latency -H "$ACCEPT" "$URL" ;;
    h2load) timeout -k 5 "$limit" h2load -t"$WRK_THREADS" -c"$2" -m"$H2_STREAMS" -D"$3" --npn-list h2 \
                -H "$ACCEPT" ${4:+--log-file="$4"} "$URL" ;;
    esac
}

CSV_HEADER="round,scenario,client,server,conns,rps,p50_us,p99_us,requests,wrong_status,sock_connect,sock_read,sock_write,sock_timeout,errors,rss_hwm_kb,cpu_s,cpu_us_per_req,backend_cpu_s,client_cpu_s,machine_busy_pct,other_cpu_s,upstream_estab,preflight,attempt,user_us_per_req"

# measure ROUND SCENARIO SERVER CLIENT CONNS PREFLIGHT ATTEMPT: one run of
# CLIENT against the running server; sets ROW (one CSV row), OTHER (CPU
# seconds used meanwhile by processes outside the benchmark) and DISTURBED
# (1 when that was more than 10% of the machine). Fails, with the reason in
# MEASURE_ERROR, when h2load did not get HTTP/2 or no response came back.
measure() {
    local round=$1 sc=$2 server=$3 client=$4 c=$5 pf=$6 attempt=$7
    local raw="$OUT/raw/r$round-$sc-$client-$server-c$c-a$attempt" reqlog=""
    local pids bpids cpu0 cpu1 bcpu0 bcpu1 sys0 sys1 pj0 pj1 up=0 other hwm client_cpu per_req rc
    local user0 user1 user_per_req
    local rps p50 p99 req wrong s_c s_r s_w s_t errors
    [ "$client" = h2load ] && reqlog="$RUN/h2load-requests.tsv"
    pids=$(tree_pids "$SERVER_PID")
    bpids=$(tree_pids "$BACKEND_PID")
    pj0=$(proc_jiffies); cpu0=$(cpu_ticks $pids); user0=$(user_ticks $pids); bcpu0=$(cpu_ticks $bpids); sys0=$(sys_jiffies)

    ( TIMEFORMAT='%R %U %S'; time client_cmd "$client" "$c" "$DURATION" ${reqlog:+"$reqlog"} >"$raw.txt" 2>"$raw.err" ) 2>"$raw.time" &
    CLIENT_PID=$!
    sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 2 }')"
    [ "$sc" = proxy ] && up=$(count_estab "dport = :$BACKEND_PORT")
    wait "$CLIENT_PID"; rc=$?; CLIENT_PID=""

    cpu1=$(cpu_ticks $pids); user1=$(user_ticks $pids); bcpu1=$(cpu_ticks $bpids); sys1=$(sys_jiffies); pj1=$(proc_jiffies)
    hwm=$(sum_status_kb VmHWM $pids)
    client_cpu=$(awk '{ printf "%.2f", $2 + $3 }' "$raw.time" 2>/dev/null)
    other=$(other_cpu "$pj0" "$pj1" $((cpu1 - cpu0 + bcpu1 - bcpu0)) "$client_cpu")

    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        rm -f ${reqlog:+"$reqlog"}
        MEASURE_ERROR="$client still running ${CLIENT_GRACE} s after its ${DURATION} s: killed (see raw/$(basename "$raw").txt)"
        return 1
    fi
    if [ "$client" = h2load ]; then
        read -r rps p50 p99 req wrong s_c s_r s_w s_t < <(parse_h2load "$raw.txt" "$reqlog" "$sc")
        rm -f "$reqlog"   # ~25 bytes a request: too big to keep
        if ! grep -q '^Application protocol: h2$' "$raw.txt"; then
            MEASURE_ERROR="h2load got no HTTP/2: $(grep -m1 -iE 'no protocol|not negotiated|error|fail|refused' "$raw.txt" "$raw.err" | sed 's/^[^:]*: *//')"
            return 1
        fi
    else
        read -r rps p50 p99 req wrong s_c s_r s_w s_t < <(parse_wrk "$raw.txt" "$sc")
    fi
    if [ "${req:-0}" = 0 ]; then
        MEASURE_ERROR="$client got no response (see raw/$(basename "$raw").txt)"
        return 1
    fi
    errors=$((wrong + s_c + s_r + s_w + s_t))
    per_req=$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" -v r="$req" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / r }')
    user_per_req=$(awk -v a="$user0" -v b="$user1" -v t="$CLK_TCK" -v r="$req" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / r }')

    ROW="$round,$sc,$client,$server,$c,$rps,$p50,$p99,$req,$wrong,$s_c,$s_r,$s_w,$s_t,$errors,$hwm"
    ROW="$ROW,$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" -v per="$per_req" -v ba="$bcpu0" -v bb="$bcpu1" \
        'BEGIN { printf "%.2f,%s,%.2f", (b - a) / t, per, (bb - ba) / t }')"
    ROW="$ROW,${client_cpu:-},$(awk -v a="$sys0" -v b="$sys1" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[2] - x[2]; if (t <= 0) t = 1; printf "%.0f", 100 * (y[1] - x[1]) / t }')"
    ROW="$ROW,$other,$up,$(echo "$pf" | tr ', ' ';_'),$attempt,$user_per_req"
    OTHER=$other
    DISTURBED=$(awk -v o="$other" -v n="$(nproc)" -v d="$DURATION" 'BEGIN { print (o > 0.1 * n * d) ? 1 : 0 }')
    log "    $client c=$c  rps=$rps  p50=${p50}us  p99=${p99}us  errors=$errors  cpu/req=${per_req}us  VmHWM=${hwm}kB  other-load=${other}s"
}
