# Sourced by run.sh: a Podman engine for the compose test, apart from any other Podman on
# the machine (its own settings, storage and API socket), and the Compose v2 front end.
# Facts this relies on: Podman 4.3 works as root with runc and cgroupfs and needs no
# systemd; Compose v2 talks to Podman's Docker-compatible API through DOCKER_HOST.

COMPOSE_VERSION=v2.40.3
cache=${IOTML_COMPOSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotml/compose}
rundir=/run/iotml-compose-test   # also named in containers.conf
export IOTML_COMPOSE_CACHE=$cache
export CONTAINERS_CONF=$here/containers.conf
export CONTAINERS_STORAGE_CONF=$rundir/storage.conf
export DOCKER_HOST=unix://$rundir/podman.sock
# Podman's API has no BuildKit session endpoint: Compose must use the classic builder.
export DOCKER_BUILDKIT=0
export COMPOSE_BIN=$cache/bin/docker-compose-$COMPOSE_VERSION

# Prints why no engine is usable here, or nothing.
engine_unusable() {
    if [ "$(uname -s)" != Linux ]; then echo "the compose test drives Podman on Linux"; return; fi
    if [ "$(id -u)" != 0 ]; then echo "the compose test runs Podman as root (run it with sudo)"; return; fi
    local missing=""
    for tool in podman runc mmdebstrap mvn; do
        command -v "$tool" >/dev/null || missing="$missing $tool"
    done
    if [ -n "$missing" ] && [ "${CI:-}" = true ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap maven >&2 \
            && missing=""
    fi
    if [ -n "$missing" ]; then
        echo "missing:$missing (apt-get install -y podman runc mmdebstrap maven)"; return
    fi
    if [ ! -x "$COMPOSE_BIN" ] && ! command -v go >/dev/null; then
        echo "Compose $COMPOSE_VERSION is built from source and needs Go >= 1.24 (https://go.dev/dl/)"
        return
    fi
    engine_config
    local err
    if ! err=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1); then
        echo "podman does not work here: $(printf '%s' "$err" | tail -n 3)"; return
    fi
}

engine_config() {
    mkdir -p "$rundir" "$cache/storage"
    cat > "$CONTAINERS_STORAGE_CONF" <<CONF
[storage]
driver = "overlay"
graphroot = "$cache/storage"
runroot = "$rundir/storage"
CONF
}

# Compose v2 from the Go module proxy, once per version. `go install module/cmd@version`
# is refused (its go.mod has exclude directives); building inside the module works.
compose_binary() {
    [ -x "$COMPOSE_BIN" ] && return
    local start=$SECONDS dir
    echo "compose: building Compose $COMPOSE_VERSION from the Go module proxy (a few minutes, once) ..."
    dir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    mkdir -p "$(dirname "$COMPOSE_BIN")"
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$COMPOSE_BIN.tmp" \
        -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" ./cmd)
    mv "$COMPOSE_BIN.tmp" "$COMPOSE_BIN"
    echo "compose: built in $((SECONDS - start))s"
}

service_start() {
    local old
    old=$(cat "$rundir/service.pid" 2>/dev/null || true)
    if [ -n "$old" ] && grep -qa "system.service" "/proc/$old/cmdline" 2>/dev/null; then
        kill "$old" 2>/dev/null || true   # left by a run that was killed outright
    fi
    rm -f "$rundir/podman.sock"
    podman system service --time=0 "$DOCKER_HOST" >"$rundir/service.log" 2>&1 &
    service_pid=$!
    echo "$service_pid" > "$rundir/service.pid"
    for _ in $(seq 100); do
        [ -S "$rundir/podman.sock" ] && return
        sleep 0.1
    done
    echo "compose: podman system service did not open its socket:" >&2
    cat "$rundir/service.log" >&2
    return 1
}

service_stop() {
    [ -n "${service_pid:-}" ] || return 0
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
    rm -f "$rundir/service.pid"
    service_pid=""
}
