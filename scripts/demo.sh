#!/usr/bin/env bash
# The demo: installs what is missing, builds in Release, then runs the demo
# app and intermission in front of it with the branded page from examples/.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
bin=build/release/intermission
mkdir -p examples/secrets .demo
[ -s examples/secrets/demo-admin-token ] || head -c 24 /dev/urandom | base64 > examples/secrets/demo-admin-token
token="$(cat examples/secrets/demo-admin-token)"
"$bin" check --config examples/intermission.yaml

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

/usr/bin/python3 examples/demo_backend.py --port 8081 & pids+=($!)
"$bin" serve --config examples/intermission.yaml & pids+=($!)
for _ in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:8080/robots.txt && break; sleep 0.1; done

cat <<TXT

intermission is running.
  http://127.0.0.1:8080/              the demo app, through intermission
  http://127.0.0.1:8080/maintenance   the branded page, as visitors see it (503)
  http://127.0.0.1:8080/robots.txt    served from the page store
  http://127.0.0.1:9901/healthz       the admin API

Maintenance on / off (effective on the next request):
  curl -H 'Authorization: Bearer $token' -X PUT -d '{"on":true,"reason":"demo"}' http://127.0.0.1:9901/v1/sites/www/maintenance
  curl -H 'Authorization: Bearer $token' -X DELETE http://127.0.0.1:9901/v1/sites/www/maintenance

Press Ctrl-C to stop the demo app and intermission.
TXT
wait
