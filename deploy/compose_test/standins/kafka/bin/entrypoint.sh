#!/bin/sh
# apache/kafka's configuration convention: every KAFKA_<NAME> variable becomes the property
# <name> ("_" -> ".", "__" -> "_", "___" -> "-"), except the JVM option variables;
# CLUSTER_ID formats the storage on first start.
set -eu
props=/opt/kafka/config/server.properties
: > "$props"
for name in $(env | sed -n 's/^\(KAFKA_[A-Za-z0-9_]*\)=.*/\1/p'); do
    case "$name" in
        KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | \
        KAFKA_LOG4J_OPTS | KAFKA_JMX_OPTS | KAFKA_JMX_PORT | KAFKA_JMX_HOSTNAME | KAFKA_VERSION)
            continue ;;
    esac
    key=$(printf '%s' "${name#KAFKA_}" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' \
        | tr '[:upper:]' '[:lower:]')
    eval "value=\${$name}"
    printf '%s=%s\n' "$key" "$value" >> "$props"
done
if [ ! -s "$props" ]; then
    echo "entrypoint: no KAFKA_* variables set: nothing to configure the broker with" >&2
    exit 2
fi
/opt/kafka/bin/kafka-run-class.sh kafka.tools.StorageTool format --ignore-formatted \
    -t "${CLUSTER_ID:?CLUSTER_ID must be set to format the storage}" -c "$props" >/dev/null
exec /opt/kafka/bin/kafka-run-class.sh ${KAFKA_HEAP_OPTS:--Xmx1G} kafka.Kafka "$props"
