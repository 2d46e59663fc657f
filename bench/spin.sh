#!/usr/bin/env bash
# bench/spin.sh - does a faster server get a worse p99 from wrk on this machine?
#
# Builds intermission with bench/patches/spin-per-request.patch (in a git
# worktree under $WORK, once), which burns IM_SPIN_NS nanoseconds of CPU at
# the start of every request, then runs bench/ab.sh on the page scenario with
# the unpatched build, the patched one at each SPINS value, and HAProxy,
# interleaved. If the tail were the server's slowness, spinning would raise
# p99; on a 2-core machine shared with wrk it lowers it (docs/benchmarks.md,
# "The page's p99 at 64 connections").
#
# Usage:  bench/spin.sh
#         SPINS="1500 3000" ROUNDS=4 CONNS=64 bench/spin.sh
# The patched build is an experiment: never ship it.
# shellcheck disable=SC2034
# (SC2034: globals read by lib.sh)

set -u -o pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"

SPINS="${SPINS:-1500 3000}"
WORK="${WORK:-$ROOT/build/spin}"
BASE_BIN="${INTERMISSION_BIN:-$ROOT/build/release/intermission}"
[ -x "$BASE_BIN" ] || die "no intermission binary at $BASE_BIN (build first, or set INTERMISSION_BIN)"

if [ ! -x "$WORK/tree/build/release/intermission" ]; then
    log "building the patched binary in $WORK/tree (once)"
    rm -rf "$WORK" && mkdir -p "$WORK"
    git -C "$ROOT" worktree prune
    git -C "$ROOT" worktree add -q --detach "$WORK/tree" HEAD || die "git worktree add failed"
    git -C "$WORK/tree" apply "$BENCH/patches/spin-per-request.patch" ||
        die "the patch no longer applies to HEAD: update bench/patches/spin-per-request.patch"
    bash "$WORK/tree/scripts/build.sh" release >"$WORK/build.log" 2>&1 || die "build failed (see $WORK/build.log)"
fi

# ab.sh starts each binary with the same environment: one wrapper per spin value.
builds=("base=$BASE_BIN")
for ns in $SPINS; do
    case "$ns" in '' | *[!0-9]*) die "SPINS are nanoseconds, not $ns" ;; esac
    printf '#!/bin/sh\nIM_SPIN_NS=%s exec %q "$@"\n' "$ns" "$WORK/tree/build/release/intermission" >"$WORK/spin$ns"
    chmod +x "$WORK/spin$ns"
    builds+=("spin$ns=$WORK/spin$ns")
done
HAPROXY=1 SCENARIO=page "$BENCH/ab.sh" "${builds[@]}"
