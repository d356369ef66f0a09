#!/usr/bin/env bash
# Start a single-node Apache Cassandra 5.0 on 127.0.0.1 from Maven Central jars (Java 17).
#
# Idempotent: fetches jars into <repo>/.cassandra/lib when missing, writes the config into
# <repo>/.cassandra/conf, starts CassandraDaemon in the background (pid in
# <repo>/.cassandra/cassandra.pid) and waits until the CQL port answers.
#
# Environment:
#   CASSANDRA_PORT          native (CQL) port            (default 9042)
#   CASSANDRA_STORAGE_PORT  internode storage port       (default 7000)
#   CASSANDRA_HEAP          -Xms/-Xmx value              (default 1g)
#   CASSANDRA_DIR           state folder                 (default <repo>/.cassandra)
#   CASSANDRA_START_TIMEOUT seconds to wait for CQL      (default 180)
#   JAVA                    java binary                  (default: java on PATH / $JAVA_HOME/bin/java)
#   MVN                     maven binary                 (default mvn)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="${CASSANDRA_DIR:-$root/.cassandra}"
port="${CASSANDRA_PORT:-9042}"
storage_port="${CASSANDRA_STORAGE_PORT:-7000}"
heap="${CASSANDRA_HEAP:-1g}"
timeout="${CASSANDRA_START_TIMEOUT:-180}"
host=127.0.0.1
if [[ -z "${JAVA:-}" ]]; then
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
fi
MVN="${MVN:-mvn}"

lib="$state/lib"
conf="$state/conf"
data="$state/data"
logdir="$state/log"
tmp="$state/tmp"
pidfile="$state/cassandra.pid"

log() { echo "cassandra: $*" >&2; }

port_open() {
  (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

cql_ready() {
  if command -v python3 >/dev/null 2>&1; then
    python3 "$here/cql-ping.py" "$host" "$port" --quiet --timeout 3
  else
    port_open "$port"
  fi
}

running_pid() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# --- already running? -------------------------------------------------------------------------
if pid="$(running_pid)"; then
  if port_open "$port"; then
    echo "cassandra already running (pid $pid) on $host:$port"
    exit 0
  fi
  log "pid $pid is alive but port $port is not open yet; waiting for it"
else
  pid=""
  rm -f "$pidfile"
  if port_open "$port"; then
    log "port $host:$port is already in use by another process" && exit 1
  fi
fi

mkdir -p "$state" "$conf" "$data" "$logdir" "$tmp"

# --- jars ----------------------------------------------------------------------------------------
# The stamp holds a checksum of pom.xml: a changed pom (e.g. new version) refetches the jars.
stamp="$lib/.fetched"
want="$(cksum < "$here/pom.xml")"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "fetching jars into $lib (maven)"
  rm -rf "$lib"
  t0=$SECONDS
  "$MVN" -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -Dcassandra.lib.dir="$lib" >&2
  echo "$want" > "$stamp"
  log "jars fetched in $((SECONDS - t0)) s"
fi
jamm="$(ls "$lib"/jamm-*.jar 2>/dev/null | head -n1 || true)"

# --- config --------------------------------------------------------------------------------------
sed -e "s|@NATIVE_PORT@|$port|g" \
    -e "s|@STORAGE_PORT@|$storage_port|g" \
    -e "s|@DATA_DIR@|$data|g" \
    "$here/cassandra.yaml" > "$conf/cassandra.yaml"
cp "$here/logback.xml" "$conf/logback.xml"

# --- start ---------------------------------------------------------------------------------------
if [[ -z "$pid" ]]; then
  # JVM flags from Cassandra 5.0 conf/jvm17-server.options (JPMS section) and bin/cassandra.in.sh.
  jvm=(
    "-Xms$heap" "-Xmx$heap" -Xss256k
    -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxGCPauseMillis=300
    -XX:+ExitOnOutOfMemoryError
    -XX:+PerfDisableSharedMem
    -Djava.net.preferIPv4Stack=true
    -Djdk.attach.allowAttachSelf=true
    -Dio.netty.tryReflectionSetAccessible=true
    --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
    --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
    --add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
    --add-exports java.sql/java.sql=ALL-UNNAMED
    --add-exports java.base/java.lang.ref=ALL-UNNAMED
    --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
    --add-opens java.base/java.lang.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
    --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
    --add-opens java.base/jdk.internal.math=ALL-UNNAMED
    --add-opens java.base/jdk.internal.module=ALL-UNNAMED
    --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
    --add-opens java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens java.base/java.io=ALL-UNNAMED
    --add-opens java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens java.base/java.lang=ALL-UNNAMED
    --add-opens java.base/java.util=ALL-UNNAMED
    --add-opens java.base/java.nio=ALL-UNNAMED
    "-Dcassandra.config=file://$conf/cassandra.yaml"
    "-Dcassandra.storagedir=$data"
    "-Dcassandra.logdir=$logdir"
    "-Dlogback.configurationFile=file://$conf/logback.xml"
    -Dcassandra-foreground=yes
    -Dcassandra.skip_wait_for_gossip_to_settle=0
    -Dcassandra.unsafesystem=true
    "-Djava.io.tmpdir=$tmp" "-Djna.tmpdir=$tmp"
  )
  [[ -n "$jamm" ]] && jvm+=("-javaagent:$jamm")
  # When a JDK (javac) is present, bin/cassandra.in.sh adds these too (UDF compilation, attach).
  if command -v javac >/dev/null 2>&1; then
    jvm+=(--add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
          --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
          --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED)
  fi
  jvm+=(${CASSANDRA_JVM_OPTS:-})

  log "starting on $host:$port (storage $storage_port, heap $heap); log in $logdir"
  start_t=$SECONDS
  # setsid: own session, so the node survives the calling shell; stdin closed.
  setsid "$JAVA" "${jvm[@]}" -cp "$conf:$lib/*" org.apache.cassandra.service.CassandraDaemon \
    </dev/null >"$logdir/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" > "$pidfile"
else
  start_t=$SECONDS
fi

# --- wait for CQL --------------------------------------------------------------------------------
while ! cql_ready; do
  if ! kill -0 "$pid" 2>/dev/null; then
    log "process $pid exited before CQL was ready; last log lines:"
    if [[ -s "$logdir/system.log" ]]; then tail -n 40 "$logdir/system.log" >&2; else tail -n 40 "$logdir/stdout.log" >&2 || true; fi
    rm -f "$pidfile"
    exit 1
  fi
  if (( SECONDS - start_t >= timeout )); then
    log "CQL port $port not ready after $timeout s; last log lines (node left running, pid $pid):"
    if [[ -s "$logdir/system.log" ]]; then tail -n 40 "$logdir/system.log" >&2; else tail -n 40 "$logdir/stdout.log" >&2 || true; fi
    exit 1
  fi
  sleep 1
done
log "ready after $((SECONDS - start_t)) s (pid $pid)"
echo "cassandra ready on $host:$port"
