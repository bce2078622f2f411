#!/bin/bash
# Makes sure a Docker engine runs and holds the test image.
#
# If `docker info` fails, starts dockerd in the background (log in
# $SC_DOCKERD_LOG, default /var/log/scalecast-dockerd.log) and waits for it,
# falling back to the flags described in tests/docker/README.md only when the
# plain start fails. Then imports scalecast-busybox:test from Debian's
# busybox-static if it is missing. Idempotent; prints what it did.
#
# With DOCKER_HOST set to an engine elsewhere it only checks that engine and
# imports the image there; it never starts a daemon it would not own.
#
# Exit: 0 ready, 1 no engine could be started (or the image not built).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

log=${SC_DOCKERD_LOG:-/var/log/scalecast-dockerd.log}

# One run at a time: parallel test programs call this too.
exec 9>/tmp/scalecast-engine.lock
flock 9

if ! command -v docker >/dev/null 2>&1; then
    sc_say "no docker client: apt-get install -y docker.io"
    exit 1
fi

if docker info >/dev/null 2>&1; then
    sc_say "engine: running ($(docker version -f 'server {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null)," \
        "storage $(docker info -f '{{.Driver}}' 2>/dev/null))"
elif [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
    sc_say "engine: DOCKER_HOST=$DOCKER_HOST does not answer; not starting a daemon for it"
    exit 1
elif [ "$(id -u)" != 0 ]; then
    sc_say "engine: not running, and starting dockerd needs root"
    exit 1
elif ! command -v dockerd >/dev/null 2>&1; then
    sc_say "engine: not running and no dockerd: apt-get install -y docker.io"
    exit 1
else
    mkdir -p "$(dirname "$log")"
    sc_start_dockerd "$log" /var/run/docker.pid || exit 1
fi

sc_import_image "$SC_TEST_IMAGE" || exit 1
exit 0
