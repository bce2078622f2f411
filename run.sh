#!/usr/bin/env bash
# One command for a newcomer: install what is missing, build, and run scalecast
# on its embedded defaults: scalecastd on http://127.0.0.1:8080 with the
# database in data/scalecast.db, plus a local agent pushing this machine's
# metrics. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
scripts/build.sh
mkdir -p data
./build/server/scalecastd "$@" &
server=$!
trap 'kill $server ${agent:-} 2>/dev/null; wait' EXIT INT TERM
for _ in $(seq 50); do
  curl -fs http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || exit 1
  sleep 0.1
done
if [[ -x build/agent/scalecast-agent ]]; then
  NODE_ID=${NODE_ID:-$(hostname)} ./build/agent/scalecast-agent --server http://127.0.0.1:8080 \
    --spool-dir data/spool &
  agent=$!
fi
echo "scalecast is running: http://127.0.0.1:8080/ (API under /api/v1, metrics at /metrics)"
wait $server
