#!/usr/bin/env bash
# Local stack for machines without Docker: Apache Kafka (KRaft, jars from Maven
# Central), Redis and Prometheus (Debian packages), all on loopback.
#
#   ops/stack.sh up     [kafka|redis|prometheus|redis-cluster ...]   install what is missing, start
#                                                       what is not running (default: the first three)
#   ops/stack.sh down   [kafka|redis|prometheus|redis-cluster ...]   stop (data is kept)
#   ops/stack.sh status                                 one line per service
#   ops/stack.sh purge                                  stop everything and delete the stack's data
#
# Every setting is an environment variable (same names the service reads):
#   KPI_STACK_DIR              data, logs and pid files      (default: <project>/.stack)
#   KPI_KAFKA_PORT             broker port                   (default: 19092)
#   KPI_KAFKA_CONTROLLER_PORT  KRaft controller port         (default: 19093)
#   KPI_KAFKA_SASL_PORT        also listen with SASL/SCRAM-SHA-256 here (user KPI_KAFKA_SASL_USERNAME,
#                              password KPI_KAFKA_SASL_PASSWORD; set when the data folder is new)
#   KPI_KAFKA_SSL_PORT         also listen with TLS here (needs KPI_STACK_TLS_DIR)
#   KPI_KAFKA_SASL_SSL_PORT    also listen with SASL/SCRAM-SHA-256 over TLS here (needs
#                              KPI_STACK_TLS_DIR and the SASL user above)
#   KPI_REDIS_PORT             Redis port                    (default: 16379)
#   KPI_REDIS_TLS_PORT         Redis also listens with TLS here; client certificates are
#                              optional, verified against the CA when given (needs KPI_STACK_TLS_DIR)
#   KPI_REDIS_CLUSTER_TLS_PORT first TLS port of the cluster's six nodes (and the next five);
#                              the nodes talk to each other over TLS (needs KPI_STACK_TLS_DIR)
#   KPI_STACK_TLS_DIR          folder with ca.pem, server.pem and server-key.pem (PKCS#8,
#                              unencrypted) for the TLS listeners; the tests generate one
#   KPI_REDIS_CLUSTER_PORT     first port of the Redis Cluster's six nodes, 3 masters and
#                              3 replicas, on this port and the next five (default: 17000);
#                              the service's address: redis+cluster://127.0.0.1:17000/0
#   KPI_PROMETHEUS_PORT        Prometheus port               (default: 19090)
#   KPI_EXPORTER_PORT          exporter port Prometheus scrapes (default: 19100)
#   KPI_WORKER_METRICS_PORT    worker metrics port Prometheus scrapes (default: 19101)
#   KPI_SCRAPE_INTERVAL        Prometheus scrape interval    (default: 5s)
#   KPI_CACHE_DIR              where the Kafka jars are kept (default: ~/.cache/kpi-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project="$(cd "$here/.." && pwd)"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"

STACK_DIR="${KPI_STACK_DIR:-$project/.stack}"
KAFKA_PORT="${KPI_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KPI_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_SASL_PORT="${KPI_KAFKA_SASL_PORT:-}"   # optional SASL_PLAINTEXT (SCRAM-SHA-256) listener
KAFKA_SASL_USERNAME="${KPI_KAFKA_SASL_USERNAME:-kpi}"
KAFKA_SASL_PASSWORD="${KPI_KAFKA_SASL_PASSWORD:-}"
KAFKA_SSL_PORT="${KPI_KAFKA_SSL_PORT:-}"
KAFKA_SASL_SSL_PORT="${KPI_KAFKA_SASL_SSL_PORT:-}"
TLS_DIR="${KPI_STACK_TLS_DIR:-}"
REDIS_TLS_PORT="${KPI_REDIS_TLS_PORT:-}"
REDIS_CLUSTER_TLS_PORT="${KPI_REDIS_CLUSTER_TLS_PORT:-}"
REDIS_PORT="${KPI_REDIS_PORT:-16379}"
REDIS_CLUSTER_PORT="${KPI_REDIS_CLUSTER_PORT:-17000}"
REDIS_CLUSTER_NODES=6
PROMETHEUS_PORT="${KPI_PROMETHEUS_PORT:-19090}"
EXPORTER_PORT="${KPI_EXPORTER_PORT:-19100}"
WORKER_PORT="${KPI_WORKER_METRICS_PORT:-19101}"
SCRAPE_INTERVAL="${KPI_SCRAPE_INTERVAL:-5s}"
CACHE_DIR="${KPI_CACHE_DIR:-$HOME/.cache/kpi-stack}"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_of() {  # pid of a running service, or nothing
  local f="$STACK_DIR/$1.pid"
  [[ -f $f ]] || return 0
  local pid; pid="$(cat "$f")"
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local start=$SECONDS
  until "$@"; do
    (( SECONDS - start < limit )) || return 1
    sleep 0.2
  done
  log "$what ready after $((SECONDS - start))s"
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (install it by hand, then rerun)"; fi
}

apt_install() {  # apt_install PACKAGE...
  log "installing Debian packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  (( ${#missing[@]} == 0 )) || apt_install "${missing[@]}"
}

ensure_kafka_libs() {
  [[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] && return 0
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  local tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 || die "Maven could not fetch the Kafka jars"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
}

start_kafka() {
  if [[ -n $(pid_of kafka) ]]; then log "kafka already running (pid $(pid_of kafka))"; return 0; fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT is taken by another process (set KPI_KAFKA_PORT)"
  ensure_kafka_libs
  local dir="$STACK_DIR/kafka"
  mkdir -p "$dir/data"
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  local advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
  local protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  local scram=()
  if [[ -n $KAFKA_SASL_PORT ]]; then
    [[ -n $KAFKA_SASL_PASSWORD ]] || die "KPI_KAFKA_SASL_PORT needs KPI_KAFKA_SASL_PASSWORD"
    listeners+=",SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"
    advertised+=",SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT"
    protocols+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
    scram=(--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]")
  fi
  local tls_props=""
  if [[ -n $KAFKA_SSL_PORT || -n $KAFKA_SASL_SSL_PORT ]]; then
    need_tls_dir
    # A PEM key store: the unencrypted PKCS#8 key followed by the certificate.
    cat "$TLS_DIR/server-key.pem" "$TLS_DIR/server.pem" > "$dir/keystore.pem"
    tls_props="ssl.keystore.type=PEM
ssl.keystore.location=$dir/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.client.auth=none"
  fi
  if [[ -n $KAFKA_SSL_PORT ]]; then
    listeners+=",SSL://127.0.0.1:$KAFKA_SSL_PORT"
    advertised+=",SSL://127.0.0.1:$KAFKA_SSL_PORT"
    protocols+=",SSL:SSL"
  fi
  if [[ -n $KAFKA_SASL_SSL_PORT ]]; then
    [[ -n $KAFKA_SASL_PASSWORD ]] || die "KPI_KAFKA_SASL_SSL_PORT needs KPI_KAFKA_SASL_PASSWORD"
    listeners+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    advertised+=",SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    protocols+=",SASL_SSL:SASL_SSL"
    scram=(--add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USERNAME,password=$KAFKA_SASL_PASSWORD]")
  fi
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
sasl.enabled.mechanisms=SCRAM-SHA-256
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$tls_props
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
auto.create.topics.enable=true
PROPS
  cp "$here/kafka/log4j2.yaml" "$dir/log4j2.yaml"
  if [[ ! -f $dir/data/meta.properties ]]; then
    local cluster_id
    cluster_id="$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    java -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$dir/log4j2.yaml" kafka.tools.StorageTool \
      format -t "$cluster_id" -c "$dir/server.properties" --ignore-formatted "${scram[@]}" \
      >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "kafka storage format failed"; }
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  : > "$dir/server.log"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.yaml" -Dkafka.logs.dir="$dir" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" >>"$dir/server.log" 2>&1 &
  echo $! > "$STACK_DIR/kafka.pid"
  wait_until 90 kafka grep -q 'Kafka Server started' "$dir/server.log" \
    || { tail -n 30 "$dir/server.log" >&2; die "kafka did not start in 90s (log: $dir/server.log)"; }
}

start_redis() {
  if [[ -n $(pid_of redis) ]]; then log "redis already running (pid $(pid_of redis))"; return 0; fi
  port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by another process (set KPI_REDIS_PORT)"
  local dir="$STACK_DIR/redis"
  mkdir -p "$dir"
  local tls=()
  if [[ -n $REDIS_TLS_PORT ]]; then
    need_tls_dir
    tls=(--tls-port "$REDIS_TLS_PORT" $(redis_tls_args))
  fi
  log "starting redis on 127.0.0.1:$REDIS_PORT${REDIS_TLS_PORT:+ (TLS on $REDIS_TLS_PORT)}"
  nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" --save "" \
    --appendonly yes --appendfsync everysec --daemonize no --logfile "$dir/redis.log" \
    "${tls[@]}" >/dev/null 2>&1 &
  echo $! > "$STACK_DIR/redis.pid"
  wait_until 30 redis redis_ping || die "redis did not answer PING in 30s (log: $dir/redis.log)"
}

need_tls_dir() {
  [[ -n $TLS_DIR ]] || die "a TLS port needs KPI_STACK_TLS_DIR (ca.pem, server.pem, server-key.pem)"
  local f
  for f in ca.pem server.pem server-key.pem; do
    [[ -r $TLS_DIR/$f ]] || die "cannot read $TLS_DIR/$f (KPI_STACK_TLS_DIR)"
  done
}

redis_tls_args() {  # server certificate; client certificates optional, checked against the CA
  echo --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server-key.pem" \
    --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients optional
}

redis_ping() { [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

node_ping() { [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; }

cluster_ok() {  # every slot served, and every master has its replica
  redis-cli -p "$REDIS_CLUSTER_PORT" cluster info 2>/dev/null | grep -q 'cluster_state:ok' \
    && [[ $(redis-cli -p "$REDIS_CLUSTER_PORT" cluster nodes 2>/dev/null | awk '$3 ~ /slave/' | wc -l) -eq $((REDIS_CLUSTER_NODES / 2)) ]]
}

start_redis_cluster() {  # six nodes with cluster-enabled; the cluster is created once
  local i port dir addresses=() tls create_tls=()
  [[ -z $REDIS_CLUSTER_TLS_PORT ]] || need_tls_dir
  for (( i = 0; i < REDIS_CLUSTER_NODES; i++ )); do
    port=$((REDIS_CLUSTER_PORT + i))
    if [[ -n $REDIS_CLUSTER_TLS_PORT ]]; then
      addresses+=("127.0.0.1:$((REDIS_CLUSTER_TLS_PORT + i))")
      create_tls=(--tls --cacert "$TLS_DIR/ca.pem")
    else
      addresses+=("127.0.0.1:$port")
    fi
    if [[ -n $(pid_of "redis-cluster-$i") ]]; then continue; fi
    port_open "$port" && die "port $port is taken by another process (set KPI_REDIS_CLUSTER_PORT)"
    dir="$STACK_DIR/redis-cluster/$port"
    mkdir -p "$dir"
    tls=()
    if [[ -n $REDIS_CLUSTER_TLS_PORT ]]; then
      # Clients may use either port (each is told the other nodes' ports of its own
      # kind); the nodes' bus and replication go over TLS.
      tls=(--tls-port "$((REDIS_CLUSTER_TLS_PORT + i))" $(redis_tls_args) --tls-cluster yes --tls-replication yes)
    fi
    nohup redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save "" \
      --appendonly yes --appendfsync everysec --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
      --daemonize no --logfile "$dir/redis.log" "${tls[@]}" >/dev/null 2>&1 &
    echo $! > "$STACK_DIR/redis-cluster-$i.pid"
  done
  for (( i = 0; i < REDIS_CLUSTER_NODES; i++ )); do
    port=$((REDIS_CLUSTER_PORT + i))
    wait_until 30 "redis node $port" node_ping "$port" \
      || { tail -n 20 "$STACK_DIR/redis-cluster/$port/redis.log" >&2
           die "redis node $port did not answer PING in 30s (log: $STACK_DIR/redis-cluster/$port/redis.log)"; }
  done
  if ! cluster_ok; then
    if [[ $(redis-cli -p "$REDIS_CLUSTER_PORT" cluster info | sed -n 's/^cluster_known_nodes:\([0-9]*\).*/\1/p') -le 1 ]]; then
      log "creating the redis cluster (3 masters, 3 replicas) on ${addresses[*]}"
      redis-cli "${create_tls[@]}" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >/dev/null \
        || die "redis-cli --cluster create failed"
    fi
    wait_until 60 "redis cluster" cluster_ok \
      || { redis-cli -p "$REDIS_CLUSTER_PORT" cluster nodes >&2; die "the redis cluster is not ok after 60s"; }
  fi
  log "redis cluster ok on 127.0.0.1:$REDIS_CLUSTER_PORT-$((REDIS_CLUSTER_PORT + REDIS_CLUSTER_NODES - 1))"
}

stop_redis_cluster() {
  local i
  for (( i = 0; i < REDIS_CLUSTER_NODES; i++ )); do stop_service "redis-cluster-$i"; done
}

prometheus_ready() { curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; }

start_prometheus() {
  if [[ -n $(pid_of prometheus) ]]; then log "prometheus already running (pid $(pid_of prometheus))"; return 0; fi
  port_open "$PROMETHEUS_PORT" && die "port $PROMETHEUS_PORT is taken by another process (set KPI_PROMETHEUS_PORT)"
  local dir="$STACK_DIR/prometheus"
  mkdir -p "$dir/data"
  sed -e "s/@SCRAPE_INTERVAL@/$SCRAPE_INTERVAL/g" -e "s/@EXPORTER_PORT@/$EXPORTER_PORT/g" \
      -e "s/@PROMETHEUS_PORT@/$PROMETHEUS_PORT/g" -e "s/@WORKER_PORT@/$WORKER_PORT/g" \
      -e "s|@RULES_FILE@|$here/prometheus/alerts.yml|g" \
      "$here/prometheus/prometheus.local.yml.in" > "$dir/prometheus.yml"
  promtool check config "$dir/prometheus.yml" >/dev/null || die "invalid Prometheus config $dir/prometheus.yml"
  log "starting prometheus on 127.0.0.1:$PROMETHEUS_PORT (scraping 127.0.0.1:$EXPORTER_PORT every $SCRAPE_INTERVAL)"
  nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=60d --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    --web.enable-lifecycle --web.enable-admin-api >"$dir/prometheus.log" 2>&1 &
  echo $! > "$STACK_DIR/prometheus.pid"
  wait_until 60 prometheus prometheus_ready || { tail -n 20 "$dir/prometheus.log" >&2; die "prometheus not ready in 60s"; }
}

stop_service() {
  local name=$1 pid; pid="$(pid_of "$name")"
  if [[ -z $pid ]]; then log "$name not running"; rm -f "$STACK_DIR/$name.pid"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  local start=$SECONDS
  while kill -0 "$pid" 2>/dev/null && (( SECONDS - start < 30 )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 30s, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$STACK_DIR/$name.pid"
  log "$name stopped"
}

status_line() {
  local name=$1 port=$2 pid; pid="$(pid_of "$name")"
  if [[ -n $pid ]]; then printf '%-11s running  pid %-8s 127.0.0.1:%s\n' "$name" "$pid" "$port"
  else printf '%-11s stopped\n' "$name"; fi
}

services() { if (( $# )); then echo "$@"; else echo kafka redis prometheus; fi; }

cmd=${1:-status}; shift || true
mkdir -p "$STACK_DIR"
case $cmd in
  up)
    start=$SECONDS
    ensure_packages
    for s in $(services "$@"); do
      case $s in
        kafka) start_kafka ;; redis) start_redis ;; prometheus) start_prometheus ;;
        redis-cluster) start_redis_cluster ;; *) die "unknown service $s" ;;
      esac
    done
    log "stack up in $((SECONDS - start))s"
    ;;
  down)
    for s in $(services "$@"); do
      if [[ $s == redis-cluster ]]; then stop_redis_cluster; else stop_service "$s"; fi
    done ;;
  status)
    status_line kafka "$KAFKA_PORT"; status_line redis "$REDIS_PORT"; status_line prometheus "$PROMETHEUS_PORT"
    for (( i = 0; i < REDIS_CLUSTER_NODES; i++ )); do
      [[ -n $(pid_of "redis-cluster-$i") ]] && status_line "redis-cluster-$i" "$((REDIS_CLUSTER_PORT + i))"
    done
    true ;;
  purge)
    for s in kafka redis prometheus; do stop_service "$s"; done
    stop_redis_cluster
    rm -rf "$STACK_DIR"; log "removed $STACK_DIR" ;;
  -h|--help|help)
    sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command $cmd (up, down, status, purge)" ;;
esac
