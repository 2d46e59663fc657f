#!/usr/bin/env bash
# The test command: installs what is missing, builds (Release and ASan+UBSan),
# runs the unit tests in both builds and the end-to-end tests against both
# binaries, then prints one summary line "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
results="$root/build/test-results"

bash scripts/install-deps.sh || exit 1
echo "== build: release"
bash scripts/build.sh release || { echo "0 passed, 1 failed"; exit 1; }
echo "== build: asan+ubsan (unit tests and the gateway)"
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
# The feature modules run a second time with every request to the gateway over HTTP/2
# cleartext; the list is H2C_MODULES in tests/e2e/conftest.py. Tests HTTP/1.1 by nature are
# skipped with a reason; their HTTP/2 twins (h2c_only) run there and are skipped in the first.
h2c_modules=$(cd tests/e2e && /usr/bin/python3 -c \
    'from conftest import H2C_MODULES; print(" ".join(m + ".py" for m in H2C_MODULES))')
# e2e_passes BINARY NAME: both passes against BINARY, results in NAME.xml and NAME-h2c.xml.
e2e_passes() {
    local start
    start=$(date +%s)
    INTERMISSION_BIN="$1" /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/e2e" \
        --junitxml="$results/$2.xml" "${pytest_args[@]}"
    echo "== end-to-end tests over HTTP/2 (h2c), $2"
    INTERMISSION_BIN="$1" /usr/bin/python3 -m pytest -q -p no:cacheprovider --protocol h2c \
        $(for m in $h2c_modules; do echo "$root/tests/e2e/$m"; done) \
        --junitxml="$results/$2-h2c.xml" "${pytest_args[@]}"
    echo "end-to-end tests, $2: $(( $(date +%s) - start )) s"
}
pytest_args=("$@")
e2e_passes "$root/build/release/intermission" e2e
echo "== end-to-end tests against the asan+ubsan build"
# The same tests find memory and undefined-behaviour errors in the request paths the unit
# tests cannot reach (sockets, TLS, HTTP/2 streams, reloads). Every process the tests start
# writes its reports under one directory (log_path), and a report fails the test that was
# running (tests/e2e/conftest.py). Leaks count too: LeakSanitizer reports at each exit.
sanitizer_logs="$results/sanitizer-reports"
mkdir -p "$sanitizer_logs"
ASAN_OPTIONS="detect_leaks=1:log_path=$sanitizer_logs/asan" \
UBSAN_OPTIONS="print_stacktrace=1:log_path=$sanitizer_logs/ubsan" \
INTERMISSION_SANITIZER_LOGS="$sanitizer_logs" \
    e2e_passes "$root/build/asan/intermission" e2e-asan

exec /usr/bin/python3 scripts/summarize.py "$results"/*.xml
