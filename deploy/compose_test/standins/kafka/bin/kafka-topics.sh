#!/bin/sh
exec /opt/kafka/bin/kafka-run-class.sh -Xmx256m org.apache.kafka.tools.TopicCommand "$@"
