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
echo "== end-to-end tests over HTTP/2 (h2c)"
# The feature modules again, every request to the gateway over HTTP/2 cleartext; the list is
# H2C_MODULES in tests/e2e/conftest.py. Tests HTTP/1.1 by nature are skipped with a reason;
# their HTTP/2 twins (h2c_only) run here and are skipped in the pass above.
h2c_modules=$(cd tests/e2e && /usr/bin/python3 -c \
    'from conftest import H2C_MODULES; print(" ".join(m + ".py" for m in H2C_MODULES))')
h2c_start=$(date +%s)
INTERMISSION_BIN="$root/build/release/intermission" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider --protocol h2c \
    $(for m in $h2c_modules; do echo "$root/tests/e2e/$m"; done) \
    --junitxml="$results/e2e-h2c.xml" "$@"
echo "end-to-end tests over HTTP/2 (h2c): $(( $(date +%s) - h2c_start )) s"

exec /usr/bin/python3 scripts/summarize.py "$results"/*.xml
