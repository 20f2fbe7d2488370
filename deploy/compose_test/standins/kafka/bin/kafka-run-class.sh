#!/bin/sh
# kafka-run-class.sh [JVM options] CLASS [arguments]: Kafka's jars on the class path.
exec java ${KAFKA_OPTS:-} -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
    -cp '/opt/kafka/libs/*' "$@"
