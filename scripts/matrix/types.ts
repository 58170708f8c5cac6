/**
 * The contract between the matrix runner (`scripts/matrix.ts`) and one
 * database server module (`scripts/matrix/<service>.ts`).
 *
 * @module
 */

/** Where the matrix keeps things; every path is absolute. */
export interface MatrixPaths {
  /** Downloads and builds, kept across clones and `down` (e.g. /var/cache/grand-tour-matrix). */
  cache: string;
  /** Root of everything a run writes; wiping it resets the matrix (e.g. /var/lib/grand-tour-matrix). */
  root: string;
  /** This service's data directory: `${root}/data/<service>`, owned by `user`. */
  data: string;
  /** This service's log file: `${root}/logs/<service>.log`. */
  log: string;
  /** Throw-away CA and server certificates: ca.pem, server.pem, server-key.pem (SAN 127.0.0.1, localhost). */
  certs: string;
  /** The unprivileged user every server runs as (`gtmatrix` when the runner is root, else the current user). */
  user: string;
}

/** Fixed ports and credentials shared by every service, the env file and compose.yaml. */
export const MATRIX = {
  host: "127.0.0.1",
  user: "grand_tour",
  password: "matrix-pw-4f9c",
  /** Login the replicas use to stream from their primary (PostgreSQL, MariaDB, Redis); the matrix password. */
  replicationUser: "grand_tour_repl",
  ports: {
    postgresql: 15432, // plain and TLS on one port (SSL negotiation)
    mariadb: 13306, // plain and TLS on one port
    redis: 16379,
    redisTls: 16380,
    // Cluster topology: each replica on a port of its own next to its primary's.
    "postgresql-standby": 15433, // plain and TLS on one port, like the primary
    "mariadb-replica": 13307, // plain and TLS on one port, like the primary
    "redis-replica": 16381,
    redisReplicaTls: 16382,
    rabbitmq: 15682,
    rabbitmqTls: 15681,
    elasticsearch: 19200,
    elasticsearchTransport: 19300,
    cassandra: 19042,
    cassandraStorage: 17000,
    ferretdb: 17017,
    ferretdbTls: 17018,
  },
} as const;

/** One real database server of the matrix. */
export interface Service {
  /** Short name used on the command line and for directories: "postgresql". */
  name: string;
  /** The gateway store it serves: "POSTGRESQL". */
  store: string;
  /** The exact pinned version it runs. */
  version: string;
  /** Installs what is missing (apt-get, mvn, go install), caching under `paths.cache`. Idempotent. */
  install(paths: MatrixPaths): Promise<void>;
  /** Initialises `paths.data` when empty (initdb, users, TLS files) and starts the server detached. Returns its pid. */
  start(paths: MatrixPaths): Promise<number>;
  /** True once the server answers a real protocol request (not just an open port). */
  ready(paths: MatrixPaths): Promise<boolean>;
  /**
   * Environment for the gateway and tests, e.g.
   * `{ POSTGRESQL_URL: "postgres://…", MATRIX_POSTGRESQL_TLS_URL: "postgres://…?…" }`.
   * A `MATRIX_<STORE>_TLS_URL` is given where the server accepts TLS; tests pair it with `MATRIX_CA_CERT`.
   */
  env(paths: MatrixPaths): Record<string, string>;
  /**
   * A cluster node's primary or previous node (`"cassandra"` for `"cassandra-2"`):
   * `up` starts this service only once that one is ready, so nodes join one at a time.
   */
  after?: string;
  /**
   * Keys of `env()` whose values, over every running node of one cluster, are
   * joined with commas in node order (`SCYLLA_URL` lists every contact point).
   * Declared by the cluster's first node; see `cluster_env.ts`.
   */
  joinedEnv?: readonly string[];
  /** Called by `down` before the server is stopped (e.g. to leave a cluster's quorum cleanly). */
  beforeStop?(paths: MatrixPaths): Promise<void>;
}
