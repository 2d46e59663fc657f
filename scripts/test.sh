#!/usr/bin/env bash
# The test command: installs what is missing, builds (Release and ASan+UBSan),
# runs the unit tests in both builds and the end-to-end tests against the
# Release binary, then prints one summary line "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
results="$root/build/test-results"

bash scripts/install-deps.sh || exit 1
echo "== build: release"
bash scripts/build.sh release || { echo "0 passed, 1 failed"; exit 1; }
echo "== build: asan+ubsan (unit tests)"
bash scripts/build.sh asan || { echo "0 passed, 1 failed"; exit 1; }

rm -rf "$results" && mkdir -p "$results"
echo "== unit tests (release)"
(cd build/release && ctest --output-on-failure -j2 --output-junit "$results/unit-release.xml")
echo "== unit tests (asan+ubsan)"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j2 --output-junit "$results/unit-asan.xml")
echo "== end-to-end tests"
# playwright-core for the dashboard's browser tests, from the lock file; a failure here
# shows up as failed dashboard tests (they say what is missing), not as a skipped run.
if [ -f tests/dashboard/package-lock.json ]; then
    npm ci --prefix tests/dashboard --no-audit --no-fund --loglevel=error >/dev/null ||
        echo "npm ci --prefix tests/dashboard failed: the dashboard tests will fail" >&2
fi
INTERMISSION_BIN="$root/build/release/intermission" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/e2e" \
    --junitxml="$results/e2e.xml" "$@"

exec /usr/bin/python3 scripts/summarize.py "$results"/*.xml
