import { assertEquals, assertOk, assertStringIncludes, assertThrows } from "./support/assert.ts";
import { ConfigError, defaultWorkers, parseConfig, parseWorkers } from "../server/config.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const files = (path: string) => {
  if (path === "/ca.pem") return PEM;
  if (path === "/not-a-cert.txt") return "hello";
  throw new Deno.errors.NotFound(path);
};

Deno.test("defaults: port 8000, SQLite at ./data/words.db, only SQLite configured", () => {
  const c = parseConfig({}, files);
  assertEquals(c.port, 8000);
  assertEquals(c.sqlitePath, "./data/words.db");
  assertEquals(c.stores, {});
  assertEquals(c.graphiql, true);
});

Deno.test("a store is configured by its URL, and its CA turns on TLS", () => {
  const c = parseConfig(
    { POSTGRESQL_URL: "postgres://u:p@db:5432/grand_tour", POSTGRESQL_CA_CERT: "/ca.pem" },
    files,
  );
  assertEquals(c.stores.POSTGRESQL?.url, "postgres://u:p@db:5432/grand_tour");
  assertEquals(c.stores.POSTGRESQL?.caCert, PEM);
});

Deno.test("RATE_LIMIT_REDIS_URL and its CA are read as Redis's own; unset, each process counts alone", () => {
  assertEquals(parseConfig({}, files).rateLimitRedis, undefined);
  assertEquals(parseConfig({ REDIS_URL: "redis://store:6379/0" }, files).rateLimitRedis, undefined);
  const c = parseConfig(
    { RATE_LIMIT_REDIS_URL: "rediss://u:p@limits:6380/2", RATE_LIMIT_REDIS_CA_CERT: "/ca.pem" },
    files,
  );
  assertEquals(c.rateLimitRedis?.url, "rediss://u:p@limits:6380/2");
  assertEquals(c.rateLimitRedis?.caCert, PEM);
  assertEquals(c.stores, {}, "the limiter's Redis is not a store");
});

Deno.test("the classic COMPOSE_<STORE>_URL and PATH_TO_<STORE>_CERT names work; new names win", () => {
  const c = parseConfig({
    COMPOSE_MONGODB_URL: "mongodb://old:1/",
    PATH_TO_MONGODB_CERT: "/ca.pem",
    COMPOSE_REDIS_URL: "redis://old:1",
    REDIS_URL: "redis://new:2",
  }, files);
  assertEquals(c.stores.MONGODB?.url, "mongodb://old:1/");
  assertEquals(c.stores.MONGODB?.caCert, PEM);
  assertEquals(c.stores.REDIS?.url, "redis://new:2");
});

Deno.test("<STORE>_TIMEOUT_MS gives one store its own budget per call; bad or orphaned, it is refused", () => {
  const c = parseConfig({
    REQUEST_TIMEOUT_MS: "1500",
    ELASTICSEARCH_URL: "http://es-1:9200,http://es-2:9200",
    ELASTICSEARCH_TIMEOUT_MS: "5000",
    REDIS_URL: "redis://r:6379/0",
  }, files);
  assertEquals(c.requestTimeoutMs, 1500);
  assertEquals(c.stores.ELASTICSEARCH?.requestTimeoutMs, 5000);
  assertEquals(c.stores.REDIS?.requestTimeoutMs, undefined, "the gateway's budget applies");
  for (const bad of ["0", "5s", "60001"]) {
    const e = assertThrows(
      () => parseConfig({ REDIS_URL: "redis://r", REDIS_TIMEOUT_MS: bad }, files),
      ConfigError,
    );
    assertStringIncludes(e.message, "REDIS_TIMEOUT_MS must be a whole number from 50 to 60000");
  }
  const orphan = assertThrows(() => parseConfig({ MYSQL_TIMEOUT_MS: "3000" }, files), ConfigError);
  assertEquals(orphan.message, "MYSQL_TIMEOUT_MS is set but MYSQL_URL is not");
});

Deno.test("SCYLLA_URL takes several contact points and the replication settings", () => {
  const c = parseConfig({
    SCYLLA_URL: "10.0.0.1:9042, 10.0.0.2:9042,cassandra://u:p@h:9042",
    SCYLLA_REPLICATION_FACTOR: "3",
    SCYLLA_DATACENTER: "dc-east",
  }, files);
  assertEquals(c.stores.SCYLLA?.options, { replicationFactor: "3", datacenter: "dc-east" });
});

Deno.test("<STORE>_READ_URL lists read replicas of PostgreSQL, MySQL and Redis, with the primary's CA", () => {
  const c = parseConfig({
    POSTGRESQL_URL: "postgres://u:p@primary:5432/db",
    POSTGRESQL_READ_URL: " postgres://u:p@standby-1:5432/db , postgresql://u:p@standby-2/db",
    POSTGRESQL_CA_CERT: "/ca.pem",
    MYSQL_URL: "mysql://u:p@primary/db",
    MYSQL_READ_URL: "mariadb://u:p@replica/db",
    REDIS_URL: "rediss://u:p@primary:6380/0",
    REDIS_READ_URL: "rediss://u:p@replica:6380/0",
  }, files);
  assertEquals(c.stores.POSTGRESQL?.readUrls, [
    "postgres://u:p@standby-1:5432/db",
    "postgresql://u:p@standby-2/db",
  ]);
  assertEquals(c.stores.POSTGRESQL?.caCert, PEM);
  assertEquals(c.stores.MYSQL?.readUrls, ["mariadb://u:p@replica/db"]);
  assertEquals(c.stores.REDIS?.readUrls, ["rediss://u:p@replica:6380/0"]);
  assertEquals(parseConfig({ REDIS_URL: "redis://h" }, files).stores.REDIS?.readUrls, undefined);
});

Deno.test("a read replica serves the primary's database: named when the read URL names none", () => {
  const c = parseConfig({
    POSTGRESQL_URL: "postgres://u:p@primary/words",
    POSTGRESQL_READ_URL: "postgres://u:p@standby-1, postgres://u:p@standby-2/words",
    REDIS_URL: "redis://primary/3",
    REDIS_READ_URL: "redis://replica",
  }, files);
  assertEquals(c.stores.POSTGRESQL?.readUrls, [
    "postgres://u:p@standby-1/words",
    "postgres://u:p@standby-2/words",
  ]);
  assertEquals(c.stores.REDIS?.readUrls, ["redis://replica/3"]);
  // The primary's URL names none: its default.
  const d = parseConfig({ REDIS_URL: "redis://primary", REDIS_READ_URL: "redis://r/0" }, files);
  assertEquals(d.stores.REDIS?.readUrls, ["redis://r/0"]);
  for (
    const env of [
      {
        POSTGRESQL_URL: "postgres://u:p@h/words",
        POSTGRESQL_READ_URL: "postgres://u:secret-pw@r/x",
      },
      { REDIS_URL: "redis://h/1", REDIS_READ_URL: "redis://u:secret-pw@r/2" },
    ]
  ) {
    const e = assertThrows(() => parseConfig(env, files), ConfigError);
    assertStringIncludes(e.message, "a replica serves the primary's database");
    assertOk(!e.message.includes("secret-pw"), e.message);
  }
});

Deno.test("ELASTICSEARCH_URL and RABBITMQ_URL may list every node of a cluster", () => {
  const es = "https://u:p@es-1:9200,https://u:p@es-2:9200";
  const mq = "amqp://u:p@mq-1:5672/%2F, amqps://u:p@mq-2:5671/%2F";
  const c = parseConfig({ ELASTICSEARCH_URL: es, RABBITMQ_URL: mq }, files);
  assertEquals(c.stores.ELASTICSEARCH?.url, es);
  assertEquals(c.stores.RABBITMQ?.url, mq);
});

Deno.test("MONGODB_URL takes a replica set's host list and its options, as MongoDB's drivers do", () => {
  const url =
    "mongodb://u:p@rs-1:27017,rs-2:27017,rs-3:27017/db?replicaSet=rs0&readPreference=secondaryPreferred";
  assertEquals(parseConfig({ MONGODB_URL: url }, files).stores.MONGODB?.url, url);
  const srv = "mongodb+srv://u:p@cluster0.example.net/db?retryWrites=true";
  assertEquals(parseConfig({ MONGODB_URL: srv }, files).stores.MONGODB?.url, srv);
});

Deno.test("RABBITMQ_VIEW_PATH places RabbitMQ's view on disk, by default beside SQLite's in ./data/", () => {
  const url = "amqp://u:p@h:5672/%2F";
  const byDefault = parseConfig({ RABBITMQ_URL: url }, files);
  assertEquals(byDefault.stores.RABBITMQ?.options, { viewPath: "./data/rabbitmq-view.db" });
  const set = parseConfig(
    { RABBITMQ_URL: url, RABBITMQ_VIEW_PATH: " /var/lib/gw/view.db " },
    files,
  );
  assertEquals(set.stores.RABBITMQ?.options, { viewPath: "/var/lib/gw/view.db" });
});

Deno.test("malformed values and wrong URL schemes are refused with a message naming the variable, never the secret", () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "eighty" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ GRAPHIQL: "maybe" }, "GRAPHIQL"],
    [{ REDIS_URL: "not a url with secret-pw" }, "REDIS_URL"],
    [{ SCYLLA_URL: "host:port:extra" }, "SCYLLA_URL"],
    [
      { MYSQL_URL: "postgres://u:secret-pw@h/db" },
      "MYSQL_URL must start with mysql:// or mariadb://",
    ],
    [{ REDIS_URL: "localhost:6379" }, "REDIS_URL must start with redis:// or rediss://"],
    [{ ELASTICSEARCH_URL: "es://u:secret-pw@h:9200" }, "ELASTICSEARCH_URL must start with http://"],
    [{ MYSQL_URL: "mysql://u:p@h/db", MYSQL_CA_CERT: "/missing.pem" }, "MYSQL_CA_CERT"],
    [{ MYSQL_URL: "mysql://u:p@h/db", MYSQL_CA_CERT: "/not-a-cert.txt" }, "MYSQL_CA_CERT"],
    [{ REDIS_CA_CERT: "/ca.pem" }, "REDIS_CA_CERT"],
    [{ SCYLLA_URL: "h:9042", SCYLLA_REPLICATION_FACTOR: "0" }, "SCYLLA_REPLICATION_FACTOR"],
    [{ SCYLLA_URL: "h:9042", SCYLLA_DATACENTER: "dc'1" }, "SCYLLA_DATACENTER"],
    [{ POSTGRESQL_READ_URL: "postgres://u:secret-pw@r/db" }, "POSTGRESQL_READ_URL is set but"],
    [
      { MYSQL_URL: "mysql://u:p@h/db", MYSQL_READ_URL: "postgres://u:secret-pw@r/db" },
      "MYSQL_READ_URL must start with mysql://",
    ],
    [
      { REDIS_URL: "redis://h", REDIS_READ_URL: "redis://ok, not a url secret-pw" },
      "REDIS_READ_URL",
    ],
    [{ REDIS_URL: "redis://h", REDIS_READ_URL: " , " }, "REDIS_READ_URL names no node"],
    [
      { ELASTICSEARCH_URL: "http://a:9200", ELASTICSEARCH_READ_URL: "http://u:secret-pw@b:9200" },
      "ELASTICSEARCH_READ_URL is not supported: list every node",
    ],
    [{ MONGODB_URL: "mongodb://a", MONGODB_READ_URL: "mongodb://b" }, "MONGODB_READ_URL"],
    [{ RABBITMQ_URL: "amqp://a, http://u:secret-pw@b" }, "RABBITMQ_URL must start with amqp://"],
    [{ MONGODB_URL: "postgres://u:secret-pw@h/db" }, "MONGODB_URL must start with mongodb://"],
    [{ MONGODB_URL: "mongodb://u:secret-pw@a:1,b:port/db" }, "MONGODB_URL is not a valid"],
    [{ MONGODB_URL: "mongodb+srv://u:secret-pw@a,b/db" }, "MONGODB_URL names one host"],
    [
      { RATE_LIMIT_REDIS_URL: "http://u:secret-pw@h:6379" },
      "RATE_LIMIT_REDIS_URL must start with redis:// or rediss://",
    ],
    [{ RATE_LIMIT_REDIS_URL: "not a url secret-pw" }, "RATE_LIMIT_REDIS_URL is not a valid URL"],
    [{ RATE_LIMIT_REDIS_CA_CERT: "/ca.pem" }, "RATE_LIMIT_REDIS_CA_CERT is set but"],
    [
      { RATE_LIMIT_REDIS_URL: "redis://h", RATE_LIMIT_REDIS_CA_CERT: "/not-a-cert.txt" },
      "RATE_LIMIT_REDIS_CA_CERT",
    ],
    [
      { RATE_LIMIT_REDIS_URL: "redis://h", RATE_LIMIT_REDIS_READ_URL: "redis://u:secret-pw@r" },
      "RATE_LIMIT_REDIS_READ_URL is not supported",
    ],
  ];
  for (const [env, name] of cases) {
    const e = assertThrows(() => parseConfig(env, files), ConfigError);
    assertOk(e.message.includes(name), `${e.message} should name ${name}`);
    assertOk(!e.message.includes("secret-pw"), e.message);
  }
});

Deno.test("security defaults: 64 KiB bodies, 10 s body pauses, 30 s bodies, armor limits, no tokens, same origin, 600 writes a minute", () => {
  const s = parseConfig({}, files).security;
  assertEquals(s, {
    maxBodyBytes: 65536,
    bodyIdleTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
    maxDepth: 6,
    maxAliases: 15,
    maxTokens: 1000,
    maxCost: 5000,
    maxDirectives: 50,
    writeToken: undefined,
    readToken: undefined,
    corsOrigins: [],
    rateLimitPerMinute: 600,
    trustedProxies: [],
  });
});

Deno.test("security settings are read from their variables", () => {
  const s = parseConfig({
    MAX_BODY_BYTES: "2048",
    BODY_IDLE_TIMEOUT_MS: "500",
    BODY_TIMEOUT_MS: "1500",
    MAX_DEPTH: "4",
    MAX_ALIASES: "0",
    MAX_TOKENS: "200",
    MAX_COST: "100",
    MAX_DIRECTIVES: "3",
    WRITE_TOKEN: " w-0123456789abcdef ",
    READ_TOKEN: "r-0123456789abcdef==",
    CORS_ORIGINS: "https://app.example.com, http://localhost:5173",
    RATE_LIMIT_PER_MINUTE: "0",
    TRUSTED_PROXIES: " 10.0.0.0/8, 192.0.2.7,::ffff:172.16.0.0/108 , 2001:DB8:0::/32, ::1",
  }, files).security;
  assertEquals(s, {
    maxBodyBytes: 2048,
    bodyIdleTimeoutMs: 500,
    bodyTimeoutMs: 1500,
    maxDepth: 4,
    maxAliases: 0,
    maxTokens: 200,
    maxCost: 100,
    maxDirectives: 3,
    writeToken: "w-0123456789abcdef",
    readToken: "r-0123456789abcdef==",
    corsOrigins: ["https://app.example.com", "http://localhost:5173"],
    rateLimitPerMinute: 0,
    trustedProxies: ["10.0.0.0/8", "192.0.2.7/32", "172.16.0.0/12", "2001:db8::/32", "::1/128"],
  });
});

Deno.test("malformed security settings are refused, naming the variable and never the token", () => {
  const secret = "s3cret-token-value";
  const cases: [Record<string, string>, string][] = [
    [{ MAX_BODY_BYTES: "64k" }, "MAX_BODY_BYTES"],
    [{ MAX_BODY_BYTES: "10" }, "MAX_BODY_BYTES"],
    [{ BODY_IDLE_TIMEOUT_MS: "10s" }, "BODY_IDLE_TIMEOUT_MS"],
    [{ BODY_IDLE_TIMEOUT_MS: "50" }, "BODY_IDLE_TIMEOUT_MS"],
    [{ BODY_TIMEOUT_MS: "0" }, "BODY_TIMEOUT_MS"],
    [
      { BODY_TIMEOUT_MS: "5000" },
      "BODY_TIMEOUT_MS (5000) must not be shorter than BODY_IDLE_TIMEOUT_MS",
    ],
    [
      { BODY_IDLE_TIMEOUT_MS: "2000", BODY_TIMEOUT_MS: "1000" },
      "BODY_TIMEOUT_MS (1000) must not be shorter than BODY_IDLE_TIMEOUT_MS (2000)",
    ],
    [{ MAX_DEPTH: "-1" }, "MAX_DEPTH"],
    [{ MAX_DEPTH: "1" }, "MAX_DEPTH"],
    [{ MAX_ALIASES: "many" }, "MAX_ALIASES"],
    [{ MAX_TOKENS: "10" }, "MAX_TOKENS"],
    [{ MAX_COST: "1.5" }, "MAX_COST"],
    [{ MAX_DIRECTIVES: "1e3" }, "MAX_DIRECTIVES"],
    [{ RATE_LIMIT_PER_MINUTE: "-5" }, "RATE_LIMIT_PER_MINUTE"],
    [{ WRITE_TOKEN: "short" }, "WRITE_TOKEN"],
    [{ WRITE_TOKEN: `${secret} with spaces` }, "WRITE_TOKEN"],
    [{ WRITE_TOKEN: `${secret}"quote` }, "WRITE_TOKEN"],
    [{ READ_TOKEN: `${secret}-read` }, "READ_TOKEN"],
    [{ WRITE_TOKEN: `${secret}-1`, READ_TOKEN: `${secret}-1` }, "READ_TOKEN"],
    [{ CORS_ORIGINS: "*" }, "CORS_ORIGINS"],
    [{ CORS_ORIGINS: "https://app.example.com/path" }, "CORS_ORIGINS"],
    [{ CORS_ORIGINS: "https://app.example.com/" }, "CORS_ORIGINS"],
    [{ CORS_ORIGINS: "app.example.com" }, "CORS_ORIGINS"],
    [{ CORS_ORIGINS: "ftp://files.example.com" }, "CORS_ORIGINS"],
    [{ TRUSTED_PROXIES: `10.0.0.1, ${secret}` }, "TRUSTED_PROXIES entry 2 is not"],
    [{ TRUSTED_PROXIES: "10.0.0.0/33" }, "TRUSTED_PROXIES entry 1 is not"],
    [{ TRUSTED_PROXIES: "10.0.0.1,,10.0.0.2" }, "TRUSTED_PROXIES entry 2 is not"],
    [{ TRUSTED_PROXIES: "10.1" }, "TRUSTED_PROXIES entry 1 is not"],
    [{ TRUSTED_PROXIES: "10.0.0.0/8, 192.0.2.1:80" }, "TRUSTED_PROXIES entry 2 is not"],
    [{ TRUSTED_PROXIES: "*" }, "TRUSTED_PROXIES entry 1 is not"],
  ];
  for (const [env, name] of cases) {
    const e = assertThrows(() => parseConfig(env, files), ConfigError);
    assertOk(e.message.includes(name), `${e.message} should name ${name}`);
    assertOk(!e.message.includes(secret), `the token leaked: ${e.message}`);
  }
});

Deno.test("metrics are served openly and logs are text by default", () => {
  const c = parseConfig({}, files);
  assertEquals(c.metrics, { enabled: true, token: undefined });
  assertEquals(c.logFormat, "text");
});

Deno.test("METRICS, METRICS_TOKEN and LOG_FORMAT are read from their variables", () => {
  const c = parseConfig({
    METRICS: "false",
    METRICS_TOKEN: " m-0123456789abcdef ",
    WRITE_TOKEN: "w-0123456789abcdef",
    LOG_FORMAT: " JSON ",
  }, files);
  assertEquals(c.metrics, { enabled: false, token: "m-0123456789abcdef" });
  assertEquals(c.logFormat, "json");
});

Deno.test("malformed metrics and log settings are refused, naming the variable and never the token", () => {
  const secret = "s3cret-0123456789abcdef";
  const cases: [Record<string, string>, string][] = [
    [{ METRICS: "maybe" }, "METRICS"],
    [{ METRICS_TOKEN: "short" }, "METRICS_TOKEN"],
    [{ METRICS_TOKEN: `${secret} with spaces` }, "METRICS_TOKEN"],
    [{ METRICS_TOKEN: secret, WRITE_TOKEN: secret }, "METRICS_TOKEN"],
    [{ LOG_FORMAT: "logfmt" }, "LOG_FORMAT"],
  ];
  for (const [env, name] of cases) {
    const e = assertThrows(() => parseConfig(env, files), ConfigError);
    assertOk(e.message.includes(name), `${e.message} should name ${name}`);
    assertOk(!e.message.includes(secret), `the token leaked: ${e.message}`);
  }
});

Deno.test("WORKERS: one per core with auto, one up to two cores by default, else one per core", () => {
  assertEquals(parseWorkers({ WORKERS: "auto" }, 8), 8);
  assertEquals(parseWorkers({ WORKERS: "3" }, 2), 3);
  assertEquals(parseWorkers({}, 2), 1);
  assertEquals(parseWorkers({}, 8), 8);
  assertEquals([1, 2, 3, 128].map(defaultWorkers), [1, 1, 3, 64]);
});

Deno.test("WORKERS: PORT=0 runs one unless told more, and refuses more", () => {
  assertEquals(parseWorkers({ PORT: "0" }, 8), 1);
  const e = assertThrows(() => parseWorkers({ PORT: "0", WORKERS: "2" }, 8), ConfigError);
  assertStringIncludes(e.message, "needs a fixed PORT");
});

Deno.test("WORKERS: anything but auto or 1 to 64 is refused, naming the variable", () => {
  for (const bad of ["0", "65", "two", "-1", "1.5"]) {
    const e = assertThrows(() => parseWorkers({ WORKERS: bad }, 2), ConfigError);
    assertStringIncludes(e.message, "WORKERS must be auto");
  }
});
