/**
 * Database user names never reach a log line: the unit tests feed the
 * redaction the messages drivers produce for a refused login (with
 * long, short and odd user names), and the store tests start the real
 * gateway against the matrix with a wrong user and password and read its
 * whole output.
 *
 * @module
 */
import { assertEquals, assertOk, assertStringIncludes } from "./support/assert.ts";
import { storeTest, testEnv } from "./support/env.ts";
import { type ServerProcess, startServer, uniqueTag } from "./support/gateway.ts";
import { redact, secretsOf } from "../stores/errors.ts";
import { safeLine } from "../server/log.ts";
import { caVariables } from "../server/config.ts";
import type { NetworkStoreName, StoreConfig } from "../stores/types.ts";

const MARK = "[redacted]";

/**
 * What drivers say about a failed login or a refused user, `<user>` standing
 * for the name: the wrong-password lines of pg, mysql2 and cassandra-driver
 * as seen against the matrix, the others in the servers' own formats.
 */
const DRIVER_MESSAGES: Record<string, string> = {
  "pg, wrong password": 'error: password authentication failed for user "<user>"',
  "pg, no pg_hba entry":
    'error: no pg_hba.conf entry for host "10.0.0.7", user "<user>", database "words", no encryption',
  "pg, unknown role": 'error: role "<user>" does not exist',
  "mysql2 with MariaDB": "Error: Access denied for user '<user>'@'127.0.0.1' (using password: YES)",
  "mysql2, database refused": "Error: Access denied for user '<user>'@'%' to database 'words'",
  "cassandra-driver, wrong password":
    "NoHostAvailableError: All host(s) tried for query failed. First host tried, 127.0.0.1:19042: AuthenticationError: Provided username <user> and/or password are incorrect",
  "cassandra-driver, no login": "AuthenticationError: <user> is not permitted to log in",
  "cassandra-driver, no permission":
    "ResponseError: User <user> has no CREATE permission on <keyspace words> or any of its parents",
  "ioredis, no permission":
    "ReplyError: NOPERM User <user> has no permissions to run the 'set' command",
  "amqplib, vhost refused":
    "Error: Channel closed by server: 530 (NOT-ALLOWED) with message \"NOT_ALLOWED - access to vhost '/' refused for user '<user>'\"",
  "elasticsearch, wrong password":
    "ResponseError: security_exception: unable to authenticate user [<user>] for REST request [/_bulk]",
};

Deno.test("user names quoted by drivers are redacted, whatever their length or characters", () => {
  const users = ["q", "q7", "log@probe-x1", "two words", "o'brien", 'say"hi', "dé_jà"];
  for (const user of users) {
    for (const [driver, template] of Object.entries(DRIVER_MESSAGES)) {
      const message = template.replace("<user>", user);
      const expected = template.replace("[<user>]", MARK).replace("<user>", MARK);
      // Without any secret the quoting alone must do (a short name is no literal secret).
      assertEquals(redact(message), expected, `${driver}, user ${user}`);
      assertEquals(redact(message, secretsOf(url(user))), expected, `${driver}, user ${user}`);
    }
  }
});

Deno.test("a log line through safeLine loses a quoted one-character user name", () => {
  const line = safeLine(
    '[store POSTGRESQL] cannot connect (error: password authentication failed for user "q")',
    secretsOf("postgres://q:pw-secret-1@127.0.0.1:5432/words"),
  );
  assertEquals(
    line,
    '[store POSTGRESQL] cannot connect (error: password authentication failed for user "[redacted]")',
  );
});

Deno.test("a one- or two-character user name is not replaced blindly in other text", () => {
  const secrets = secretsOf("postgres://ed:pw-secret-1@127.0.0.1:5432/words");
  assertEquals(redact("[store POSTGRESQL] connected", secrets), "[store POSTGRESQL] connected");
});

Deno.test("store URLs yield their user names raw, percent-encoded and decoded", () => {
  const pg = secretsOf("postgres://log%40probe:p%2Fw-1@127.0.0.1:5432/words");
  for (const s of ["log%40probe", "log@probe", "p%2Fw-1", "p/w-1"]) {
    assertOk(pg.includes(s), `missing ${s}`);
  }
  assertEquals(
    redact("cannot connect: user log@probe or log%40probe with p/w-1 refused", pg),
    `cannot connect: user ${MARK} or ${MARK} with ${MARK} refused`,
  );
});

Deno.test("every contact point of a Scylla list counts, with or without a scheme", () => {
  const list = "10.0.0.1:9042, cassandra://cql%2Buser:pw-cql-1@10.0.0.2:9042,ops@10.0.0.3";
  const secrets = secretsOf(list);
  for (const s of ["cql%2Buser", "cql+user", "pw-cql-1", "ops"]) {
    assertOk(secrets.includes(s), `missing ${s}`);
  }
  assertOk(!secrets.includes("10.0.0.1:9042"), "a bare host:port is no secret");
  assertEquals(
    redact("Provided username cql+user failed at 10.0.0.1:9042; ops tried", secrets),
    `Provided username ${MARK} failed at 10.0.0.1:9042; ${MARK} tried`,
  );
});

Deno.test("a URL is redacted whole even when a user name inside it is a secret too", () => {
  const u = "postgres://words_app:pw-secret-1@db.example:5432/words_app";
  const out = redact(`bad ${u} here`, [...secretsOf("mysql://words_app:x@h/db"), ...secretsOf(u)]);
  assertEquals(out, `bad ${MARK} here`);
});

Deno.test("redacting a line twice keeps the markers whole", () => {
  const secrets = secretsOf("redis://act:pw-secret-1@127.0.0.1:6379/0");
  const once = redact("user act has no say; pw-secret-1", secrets);
  assertEquals(redact(once, secrets), once);
  assertOk(!once.includes("act "), once);
});

function url(user: string): string {
  return `postgres://${encodeURIComponent(user)}:pw-secret-1@127.0.0.1:5432/words`;
}

// --- the real gateway against the matrix -------------------------------------------------------

/**
 * Stores whose matrix server checks passwords (the matrix's Elasticsearch runs
 * without security and accepts any user), and whether their driver quotes the
 * user name in its failure message.
 */
const CHECKED: [NetworkStoreName, { quotesUser: boolean }][] = [
  ["POSTGRESQL", { quotesUser: true }],
  ["MYSQL", { quotesUser: true }],
  ["SCYLLA", { quotesUser: true }],
  ["MONGODB", { quotesUser: false }],
  ["REDIS", { quotesUser: false }],
  ["RABBITMQ", { quotesUser: false }],
];

/**
 * `config`'s URL with `user` and `password` (both already percent-encoded).
 * For Scylla a list: a bare contact point first, the credentials in the second.
 */
function withLogin(store: NetworkStoreName, config: StoreConfig, user: string, password: string) {
  const first = config.url.split(",")[0].trim();
  const u = new URL(first.includes("://") ? first : `cassandra://${first}`);
  u.username = user;
  u.password = password;
  if (store !== "SCYLLA") return u.toString();
  return `${u.host},cassandra://${user}:${password}@${u.host}`;
}

/** The gateway with only `store` configured, at `url`. */
function startWith(store: NetworkStoreName, url: string): Promise<ServerProcess> {
  const env: Record<string, string> = {
    [`${store}_URL`]: url,
    CONNECT_TIMEOUT_MS: "1500",
    RECONNECT_MAX_MS: "1000",
  };
  for (const name of caVariables(store)) if (testEnv[name]) env[name] = testEnv[name];
  if (store === "SCYLLA") env.SCYLLA_DATACENTER = testEnv.SCYLLA_DATACENTER ?? "datacenter1";
  return startServer(env);
}

/** Waits until `store` logged a failed connection attempt; returns the whole output. */
async function failureLogged(server: ServerProcess, store: NetworkStoreName): Promise<string> {
  const line = `[store ${store}] cannot connect`;
  const deadline = Date.now() + 30_000;
  while (!server.output().includes(line)) {
    if (server.output().includes(`[store ${store}] connected`)) {
      throw new Error(`${store} accepted a wrong user and password:\n${server.output()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${store} logged no failed connection in 30 s:\n${server.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return server.output();
}

for (const [store, { quotesUser }] of CHECKED) {
  storeTest(
    store,
    "a wrong login logs no user name (raw, percent-encoded or decoded) and no password",
    async (config) => {
      const token = uniqueTag();
      const user = `log%40${token}`;
      const password = `wrong%2F${crypto.randomUUID().slice(0, 8)}`;
      const server = await startWith(store, withLogin(store, config, user, password));
      try {
        const output = await failureLogged(server, store);
        const forbidden = [
          user,
          decodeURIComponent(user),
          token,
          password,
          decodeURIComponent(password),
        ];
        for (const secret of forbidden) {
          assertOk(!output.includes(secret), `${secret} leaked into the log:\n${output}`);
        }
        assertStringIncludes(output, `[store ${store}] cannot connect`);
        if (quotesUser) assertStringIncludes(output, MARK, "the quoted user name was redacted");
      } finally {
        await server.stop();
      }
    },
  );
}

for (const [store] of CHECKED.filter(([, o]) => o.quotesUser)) {
  storeTest(
    store,
    "a wrong login with a two-character user name logs it nowhere",
    async (config) => {
      const user = `z${Math.floor(Math.random() * 10)}`;
      const password = `wrong-${crypto.randomUUID().slice(0, 8)}`;
      const server = await startWith(store, withLogin(store, config, user, password));
      try {
        const output = await failureLogged(server, store);
        for (const quoted of [`"${user}"`, `'${user}'`, `username ${user} `]) {
          assertOk(!output.includes(quoted), `${quoted} leaked into the log:\n${output}`);
        }
        assertOk(!output.includes(password), `the password leaked:\n${output}`);
        assertStringIncludes(output, MARK, "the quoted user name was redacted");
      } finally {
        await server.stop();
      }
    },
  );
}
