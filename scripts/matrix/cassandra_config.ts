/**
 * How the matrix runs each Cassandra node: its address and heap
 * ({@linkcode NODES}), JVM flags, `cassandra.yaml` and `logback.xml`. Every
 * node has the same ports on its own loopback address, node 1 is the seed.
 *
 * @module
 */
import { CERT_FILES } from "./certs.ts";
import { MATRIX, type MatrixPaths } from "./types.ts";

/** The one data centre. */
export const DATACENTER = "datacenter1";
/** Replication factor of the cluster topology's keyspaces: every node holds every row. */
export const CLUSTER_RF = 3;
const MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon";
/** Keystore (private key + certificate chain, PEM) and truststore (CA, PEM) in the data dir. */
export const TLS_DIR = "tls";
/** The keystore's file name in {@linkcode TLS_DIR}. */
export const KEYSTORE = "server-keystore.pem";

/** One node of the matrix's Cassandra. */
export interface CassandraNode {
  /** The matrix service: "cassandra", "cassandra-2", … */
  service: string;
  /** Listen, broadcast and CQL address. */
  host: string;
  heap: string;
  /** The seed (node 1), which never bootstraps from others. */
  seed: boolean;
}

/** The three nodes; node 1 is the default topology's single node. */
export const NODES: readonly CassandraNode[] = [
  { service: "cassandra", host: MATRIX.host, heap: "768m", seed: true },
  { service: "cassandra-2", host: "127.0.0.2", heap: "768m", seed: false },
  { service: "cassandra-3", host: "127.0.0.3", heap: "768m", seed: false },
];

/**
 * JVM flags: small fixed heap, G1 as upstream, the module exports/opens that
 * Cassandra's `conf/jvm17-server.options` needs on Java 17, and start-up
 * shortcuts that are safe on loopback.
 */
export function jvmArgs(node: CassandraNode, paths: MatrixPaths, lib: string): string[] {
  const exportsTo = [
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
    "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
  ];
  const opensTo = [
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "jdk.compiler/com.sun.tools.javac",
    "java.base/java.lang",
    "java.base/java.util",
  ];
  const d = paths.data;
  return [
    `-Xms${node.heap}`,
    `-Xmx${node.heap}`,
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:ParallelGCThreads=2",
    "-XX:ConcGCThreads=1",
    "-XX:MaxDirectMemorySize=512m",
    "-XX:+HeapDumpOnOutOfMemoryError",
    `-XX:HeapDumpPath=${d}`,
    "-XX:+ExitOnOutOfMemoryError",
    "-Xss256k",
    "-Djava.net.preferIPv4Stack=true",
    "-Djdk.attach.allowAttachSelf=true",
    ...exportsTo.flatMap((m) => ["--add-exports", `${m}=ALL-UNNAMED`]),
    ...opensTo.flatMap((m) => ["--add-opens", `${m}=ALL-UNNAMED`]),
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    `-Djava.io.tmpdir=${d}/tmp`,
    `-Djna.tmpdir=${d}/tmp`,
    `-Duser.home=${d}`,
    "-Dcassandra-foreground=yes",
    `-Dcassandra.config=file://${d}/cassandra.yaml`,
    `-Dcassandra.storagedir=${d}`,
    `-Dcassandra.logdir=${d}/logs`,
    `-Dlogback.configurationFile=file://${d}/logback.xml`,
    // Loopback gossip settles at once, and the default role is wanted at once.
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.superuser_setup_delay_ms=0",
    // A lone seed has no peers to hear from: don't sleep 30 s before choosing its tokens. A
    // joining node waits a little longer to learn the ring before it picks its own.
    `-Dcassandra.ring_delay_ms=${node.seed ? 1000 : 5000}`,
    `-Dcassandra.triggers_dir=${d}/triggers`,
    "-cp",
    `${lib}/*`,
    MAIN_CLASS,
  ];
}

/** cassandra.yaml of `node`, written on every start. */
export function yaml(node: CassandraNode, paths: MatrixPaths): string {
  const d = paths.data;
  const tls = `${d}/${TLS_DIR}`;
  return `# Written by scripts/matrix/cassandra.ts on every start; edits are overwritten.
cluster_name: grand_tour_matrix
num_tokens: 16
allocate_tokens_for_local_replication_factor: ${node.seed ? 1 : CLUSTER_RF}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
listen_address: ${node.host}
rpc_address: ${node.host}
native_transport_port: ${MATRIX.ports.cassandra}
storage_port: ${MATRIX.ports.cassandraStorage}
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${NODES[0].host}:${MATRIX.ports.cassandraStorage}"
endpoint_snitch: SimpleSnitch
# Every write waits for the fsync of its commit-log segment before it is acknowledged.
commitlog_sync: batch
data_file_directories:
  - ${d}/data
commitlog_directory: ${d}/commitlog
saved_caches_directory: ${d}/saved_caches
hints_directory: ${d}/hints
cdc_raw_directory: ${d}/cdc_raw
authenticator: PasswordAuthenticator
# Logins read roles at LOCAL_ONE (Cassandra 5's default is LOCAL_QUORUM): with system_auth at RF 3,
# node 1 started alone after the cluster stopped must still let the matrix user in.
auth_read_consistency_level: LOCAL_ONE
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
# Small and polite on a shared two-core machine.
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
native_transport_max_threads: 32
# Plain CQL and TLS on the same port (the server sniffs the first bytes).
client_encryption_options:
  enabled: true
  optional: true
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: ${tls}/${KEYSTORE}
  truststore: ${tls}/${CERT_FILES.ca}
  require_client_auth: false
`;
}

/** logback.xml: INFO to stdout. */
export const LOGBACK = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/matrix/cassandra.ts: INFO to stdout, which the matrix log captures. -->
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT" />
  </root>
</configuration>
`;
