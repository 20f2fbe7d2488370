#!/usr/bin/env bash
# make compose-test: docker-compose.yml run for real on Podman, with stand-ins for the
# public images where no registry is reachable (see driver.py for what is checked).
#   deploy/compose_test/run.sh [compose file]      (default: docker-compose.yml)
# Skips, saying why, where no engine is usable; fails instead when CI=true. The engine, the
# stand-in images and the Compose binary are cached in ~/.cache/iotml/compose.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
file=$(realpath "${1:-$repo/docker-compose.yml}")
project=iotml-compose-test
PYTHON=${PYTHON:-python3}
start=$SECONDS

skip() {
    if [ "${CI:-}" = true ]; then echo "compose-test: FAIL (CI=true): $1" >&2; exit 1; fi
    echo "compose-test: SKIPPED: $1"
    exit 0
}

# The cheap static check first: a broken compose file fails before any engine work.
(cd "$repo" && "$PYTHON" -m deploy.compose_test.check "$file")

. "$here/engine.sh"
reason=$(engine_unusable) || true
[ -z "$reason" ] || skip "$reason"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 3600 9 || { echo "compose-test: another compose test holds $cache/.lock" >&2; exit 1; }

prep=$SECONDS
compose_binary
"$here/standins/build.sh"
echo "compose-test: engine, Compose and stand-in images ready in $((SECONDS - prep))s"

sweep() {  # last resort after the driver's own `down -v` (e.g. if it was killed)
    local label=label=com.docker.compose.project=$project
    podman ps --all --quiet --filter "$label" | xargs -r podman rm --force --volumes >/dev/null || true
    podman network ls --quiet --filter "$label" | xargs -r podman network rm --force >/dev/null || true
    podman volume ls --quiet --filter "$label" | xargs -r podman volume rm --force >/dev/null || true
    # Build containers of an interrupted build, then the images that newer builds replaced
    # (the layers of the current images stay: they are the build cache).
    podman ps --all --external --quiet | xargs -r podman rm --force >/dev/null 2>&1 || true
    podman image prune --force >/dev/null 2>&1 || true
    service_stop
    echo "compose-test: done in $((SECONDS - start))s"
}
trap sweep EXIT
service_start
cd "$repo"
# The driver runs in the background so that a signal reaches this script at once; it is
# passed on, and the driver's own clean-up (`down -v`) runs before the sweep.
"$PYTHON" -m deploy.compose_test.driver --compose-bin "$COMPOSE_BIN" --file "$file" \
    --project "$project" &
driver=$!
trap 'kill -TERM "$driver" 2>/dev/null || true' INT TERM
set +e
while :; do
    wait "$driver"
    rc=$?
    kill -0 "$driver" 2>/dev/null || break
done
exit "$rc"
