#!/usr/bin/env python3
"""Summary of a bench/run.sh run: results.csv + skipped.csv (+ tls.csv) -> Markdown on stdout.

Per scenario, client (wrk; in TLS runs also h2load), concurrency and server: the median over rounds (min-max) of
requests/s, p50/p99 latency, peak RSS and CPU time per request, errors summed
over rounds. Then intermission's ratio to each peer and the targets:
  rps      >= the faster peer's
  p99      <= the better peer's
  CPU/req  <= 0.8 x the better peer's
Standard library only.
"""
import argparse
import csv
import datetime
import os
import statistics
from collections import defaultdict

CPU_FACTOR = 0.8
SUBJECT = "intermission"


def median_range(values, fmt):
    if not values:
        return "-"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--scenarios", required=True)
    ap.add_argument("--conns", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--wrk-threads", default="1")
    ap.add_argument("--clients", default="wrk")
    ap.add_argument("--tls", default="0")
    ap.add_argument("--h2-streams", default="10")
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args()

    servers, scenarios, conns, clients = a.servers.split(), a.scenarios.split(), a.conns.split(), a.clients.split()
    tls = a.tls == "1"
    peers = [s for s in servers if s != SUBJECT]
    ncpu = os.cpu_count() or 1

    # results.csv of runs before the client column: wrk, and its CPU column was wrk_cpu_s
    rows = defaultdict(list)  # (scenario, client, conns, server) -> [row]
    with open(os.path.join(a.out, "results.csv"), newline="") as f:
        for r in csv.DictReader(f):
            r.setdefault("client_cpu_s", r.get("wrk_cpu_s", "0"))
            rows[(r["scenario"], r.get("client", "wrk"), r["conns"], r["server"])].append(r)
    skipped = defaultdict(list)  # (scenario, client, server) -> [reason]
    with open(os.path.join(a.out, "skipped.csv"), newline="") as f:
        for r in csv.DictReader(f):
            skipped[(r["scenario"], r.get("client", "wrk"), r["server"])].append(
                f"round {r['round']}: {r['reason']}")
    negotiated = defaultdict(set)  # server -> {(protocol, cipher, key exchange, signature, alpn, resumed)}
    tls_csv = os.path.join(a.out, "tls.csv")
    if tls and os.path.exists(tls_csv):
        with open(tls_csv, newline="") as f:
            for r in csv.DictReader(f):
                negotiated[r["server"]].add(tuple(r[k] for k in (
                    "protocol", "cipher", "key_exchange", "signature", "alpn", "resumed")))

    def col(key, name, scale=1.0):
        return [float(r[name]) * scale for r in rows.get(key, [])]

    def med(key, name, scale=1.0):
        v = col(key, name, scale)
        return statistics.median(v) if v else None

    def by_round(key, name):
        return {r["round"]: float(r[name]) for r in rows.get(key, [])}

    out = []
    p = out.append
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    title = {"wrk": "wrk (HTTP/1.1 over TLS)" if tls else "wrk", "h2load": "h2load (HTTP/2 over TLS)"}
    command = {"wrk": f"wrk -t{a.wrk_threads} -d{a.duration:g}s --latency" + (" https://..." if tls else ""),
               "h2load": f"h2load -t{a.wrk_threads} -m{a.h2_streams} -D{a.duration:g} --npn-list h2 https://..."}
    p(f"# intermission benchmark{' over TLS' if tls else ''} ({now})")
    p("")
    p("; ".join(f"`{command[c]}`" for c in clients) + f"; {a.rounds} round(s), server order rotated "
      f"every round; median over rounds (min–max in brackets). Machine and versions: env.txt.")
    p("errors = responses of the wrong status class (page: not 503, proxy: not 2xx/3xx) + socket "
      "errors, summed over rounds. CPU µs/req = the server's own utime+stime (all its processes "
      "and threads) / requests served (on kernels without IRQ time accounting, see env.txt, that "
      "includes the softirq work for loopback TCP that ran in the server's context). "
      "client % = load generator CPU as % of one core (near 100 % means the client is the limit).")
    if "h2load" in clients:
        p(f"h2load: conns = TCP connections, each with {a.h2_streams} concurrent streams; "
          "p50/p99 are computed from its `--log-file` (per request: start to end of response; "
          "h2load itself prints only min/max/mean/sd); its errored and timed-out streams count as errors.")
    p("")
    if tls:
        p("## TLS as negotiated")
        p("")
        p("openssl s_client offering h2,http/1.1 to each server run, then a second connection "
          "with the first one's session (tls.csv).")
        p("")
        p("| server | protocol | cipher | key exchange | signature | ALPN | session resumed |")
        p("|---|---|---|---|---|---|---|")
        for s in servers:
            for t in sorted(negotiated.get(s, [])) or [("–",) * 6]:
                p(f"| {s} | " + " | ".join(t) + " |")
        if len({t[:4] + t[5:] for v in negotiated.values() for t in v}) > 1:
            p("")
            p("**The servers did not all negotiate the same TLS parameters** (ALPN aside): "
              "the comparison is not like for like.")
        p("")

    for sc, client in ((sc, cl) for sc in scenarios for cl in clients):
        name = sc if len(clients) == 1 and not tls else f"{sc}, {title[client]}"
        short = sc if len(clients) == 1 and not tls else f"{sc}, {client}"
        p(f"## {name}")
        p("")
        p(f"| conns | server | req/s | p50 ms | p99 ms | errors | peak RSS MiB | CPU µs/req | {client} % | notes |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        for c in conns:
            for s in servers:
                key = (sc, client, c, s)
                rs = rows.get(key, [])
                if not rs:
                    why = "; ".join(skipped.get((sc, client, s), [])) or "no data"
                    p(f"| {c} | {s} | – | – | – | – | – | – | – | not measured: {why} |")
                    continue
                notes = []
                if all(r.get("user_us_per_req") for r in rs):  # runs before it had no such column
                    notes.append("user " + median_range(col(key, "user_us_per_req"), "{:.2f}") + " µs/req")
                if sc == "proxy":
                    notes.append("upstream conns " + median_range(col(key, "upstream_estab"), "{:.0f}"))
                warns = sorted({r["preflight"] for r in rs if r["preflight"] != "ok"})
                if warns:
                    notes.append("preflight " + ", ".join(w.replace("_", " ").replace(";", ",") for w in warns))
                disturbed = sum(1 for r in rs if float(r["other_cpu_s"]) > 0.1 * ncpu * a.duration)
                if disturbed:
                    notes.append(f"{disturbed}/{len(rs)} disturbed by other load")
                if len(rs) != a.rounds:
                    notes.append(f"{len(rs)}/{a.rounds} rounds")
                errors = sum(int(r["errors"]) for r in rs)
                p(f"| {c} | {s} | {median_range(col(key, 'rps'), '{:,.0f}')} "
                  f"| {median_range(col(key, 'p50_us', 1e-3), '{:.2f}')} "
                  f"| {median_range(col(key, 'p99_us', 1e-3), '{:.2f}')} "
                  f"| {errors} "
                  f"| {median_range(col(key, 'rss_hwm_kb', 1 / 1024), '{:.1f}')} "
                  f"| {median_range(col(key, 'cpu_us_per_req'), '{:.2f}')} "
                  f"| {median_range(col(key, 'client_cpu_s', 100 / a.duration), '{:.0f}')} "
                  f"| {'; '.join(notes)} |")
        p("")

        if SUBJECT not in servers or not peers:
            continue
        p(f"### {short}: intermission / peer (ratio of medians; per-round range in brackets)")
        p("")
        p("rps ratio > 1 is better; p99 and CPU/req ratios < 1 are better.")
        p("")
        p("| conns | peer | rps ratio | p99 ratio | CPU/req ratio |")
        p("|---|---|---|---|---|")
        for c in conns:
            me = (sc, client, c, SUBJECT)
            for peer in peers:
                other = (sc, client, c, peer)
                cells = []
                for name in ("rps", "p99_us", "cpu_us_per_req"):
                    m1, m2 = med(me, name), med(other, name)
                    if m1 is None or not m2:
                        cells.append("–")
                        continue
                    r1, r2 = by_round(me, name), by_round(other, name)
                    per = [r1[k] / r2[k] for k in r1 if k in r2 and r2[k]]
                    cell = f"{m1 / m2:.2f}"
                    if len(per) > 1:
                        cell += f" ({min(per):.2f}–{max(per):.2f})"
                    cells.append(cell)
                p(f"| {c} | {peer} | " + " | ".join(cells) + " |")
        p("")

        p(f"### {short}: targets")
        p("")
        p("| conns | target | intermission | threshold | result |")
        p("|---|---|---|---|---|")
        for c in conns:
            me = (sc, client, c, SUBJECT)
            got = {n: med(me, n) for n in ("rps", "p99_us", "cpu_us_per_req")}
            peer_vals = {n: [(med((sc, client, c, q), n), q) for q in peers if med((sc, client, c, q), n) is not None]
                         for n in got}
            targets = [
                ("req/s ≥ faster peer", "rps", max, 1.0, "{:,.0f}", lambda x, t: x >= t),
                ("p99 ≤ better peer", "p99_us", min, 1.0, "{:.2f} ms", lambda x, t: x <= t),
                (f"CPU/req ≤ {CPU_FACTOR}× better peer", "cpu_us_per_req", min, CPU_FACTOR,
                 "{:.2f} µs", lambda x, t: x <= t),
            ]
            for label, name, pick, factor, fmt, ok in targets:
                scale = 1e-3 if name == "p99_us" else 1.0
                if not peer_vals[name]:
                    p(f"| {c} | {label} | – | – | n/a (no peer measured) |")
                    continue
                best, who = pick(peer_vals[name])
                threshold = best * factor
                by = f"{who}{'' if factor == 1 else f' × {factor}'}"
                if got[name] is None:
                    p(f"| {c} | {label} | not measured | {fmt.format(threshold * scale)} ({by}) | FAIL (not measured) |")
                    continue
                verdict = "PASS" if ok(got[name], threshold) else "FAIL"
                p(f"| {c} | {label} | {fmt.format(got[name] * scale)} "
                  f"| {fmt.format(threshold * scale)} ({by}) | {verdict} |")
        p("")

    if any(skipped.values()):
        p("## Not measured")
        p("")
        for (sc, client, s), reasons in sorted(skipped.items()):
            for why in reasons:
                p(f"- {s} {sc}{'' if len(clients) == 1 and not tls else f' ({client})'}, {why}")
        p("")
    if a.seconds:
        p(f"Run time: {a.seconds} s.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
