#!/usr/bin/env bash
# The public images the compose file names (python:3.11-slim, eclipse-mosquitto:2,
# apache/kafka:4.1.1): pulled where a registry is reachable, otherwise stand-ins built from
# Debian packages and Maven Central. A stand-in is labelled with a hash of its recipe and
# rebuilt only when the recipe changes. Needs mmdebstrap, Maven and the Podman environment
# that ../engine.sh sets up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${IOTML_COMPOSE_CACHE:?run through ../run.sh}
suite=bookworm
mirror=${IOTML_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${IOTML_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

declare -A packages=(
    [python]="python3 python3-pip python-is-python3 ca-certificates"
    [mosquitto]="mosquitto mosquitto-clients"
    [kafka]="openjdk-17-jre-headless passwd"
)
declare -A names=(
    [python]="docker.io/library/python:3.11-slim"
    [mosquitto]="docker.io/library/eclipse-mosquitto:2"
    [kafka]="docker.io/apache/kafka:4.1.1"
)

recipe_hash() {
    { echo "$suite ${packages[$1]}"; cat "$here/$1.Containerfile"
      [ ! -d "$here/$1" ] || find "$here/$1" -type f | sort | xargs cat; } | sha256sum | cut -c1-16
}

kafka_jars() {  # Maven resolves the jars once per pom into the cache
    local out=$cache/kafka-jars-$(sha256sum "$here/kafka/pom.xml" | cut -c1-16)
    if [ ! -f "$out/.complete" ]; then
        rm -rf "$out.tmp"
        mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$out.tmp/libs" >&2
        rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.complete"
    fi
    echo "$out/libs"
}

build() {
    local what=$1 name=${names[$1]} hash have start context
    hash=$(recipe_hash "$what")
    if have=$(podman image inspect --format '{{index .Labels "iotml.standin.recipe"}}' "$name" 2>/dev/null); then
        case "$have" in
            "$hash") echo "stand-in $name: cached"; return ;;
            "" | "<no value>") echo "image $name: the real one"; return ;;
        esac
    elif timeout 600 podman pull --quiet "$name" >/dev/null 2>&1; then
        echo "image $name: pulled"
        return
    fi
    start=$(date +%s)
    echo "stand-in $name: building from Debian $suite packages ..."
    # --variant=minbase: Essential packages plus apt; documentation and translations dropped
    # (Java's postinst still needs the man1 directory for its alternatives).
    mmdebstrap --quiet --variant=minbase --include="${packages[$what]// /,}" \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
        "$suite" - "deb $mirror $suite main" "deb $mirror $suite-updates main" \
        "deb $security $suite-security main" \
        | podman import --quiet - "localhost/iotml-standin-root-$what" >/dev/null
    context=$(mktemp -d)
    trap 'rm -rf "$context"' RETURN
    [ ! -d "$here/$what" ] || cp -a "$here/$what/." "$context/"
    [ "$what" != kafka ] || cp -a "$(kafka_jars)" "$context/libs"
    podman build --quiet --label "iotml.standin.recipe=$hash" \
        --label "org.opencontainers.image.description=iotml compose-test stand-in for $name" \
        -f "$here/$what.Containerfile" -t "$name" "$context" >/dev/null
    podman rmi --force "localhost/iotml-standin-root-$what" >/dev/null
    echo "stand-in $name: built in $(( $(date +%s) - start ))s"
}

for what in ${*:-python mosquitto kafka}; do
    build "$what"
done
