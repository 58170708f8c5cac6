/**
 * Least privilege: the launcher (server/launch.ts, what `deno task start`
 * runs) grants `main.ts` only what its configuration needs. Unit tests of
 * the flags it computes, then the real start command (startServer runs
 * exactly the start task) with the embedded SQLite store only: the gateway
 * works, its process carries exactly those flags, a read the configuration
 * asks of a driver outside them is refused, and every driver loads and
 * connects under them (to local listeners that never answer: no database).
 */
import { assertEquals, assertOk, assertStringIncludes, assertThrows } from "./support/assert.ts";
import { startServer } from "./support/gateway.ts";
import { parseConfig } from "../server/config.ts";
import {
  childArgs,
  LaunchError,
  launchFlags,
  permissionFlags,
  reportingFlags,
  ROOT,
} from "../server/launch.ts";
import { startArgs } from "../scripts/start_command.ts";
import { ConfigError, type Env } from "../stores/settings.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const WHERE = { cwd: "/srv/gt", root: "/opt/grand-tour" };

/** The flags for `env`; one worker unless `env` says otherwise (the default depends on the host's cores). */
function flagsOf(env: Env, where = WHERE): string[] {
  const withWorkers = { WORKERS: "1", ...env };
  return permissionFlags(parseConfig(withWorkers, () => PEM), withWorkers, where);
}

Deno.test("default configuration: the repository's files, the .env files and ./data; write ./data only", () => {
  assertEquals(flagsOf({}), [
    "--allow-read=/opt/grand-tour/static,/opt/grand-tour/schema.graphql,/opt/grand-tour/stores," +
    "/srv/gt/.env,/srv/gt/.env.matrix,/srv/gt/data",
    "--allow-write=/srv/gt/data",
    "--allow-net=0.0.0.0:8000",
    "--allow-env",
    "--allow-sys=osRelease",
  ]);
});

Deno.test("several workers: their modules are readable too, and SO_REUSEPORT's --unstable-net", () => {
  assertEquals(flagsOf({ WORKERS: "4" }), [
    "--allow-read=/opt/grand-tour/static,/opt/grand-tour/schema.graphql,/opt/grand-tour/stores," +
    "/srv/gt/.env,/srv/gt/.env.matrix,/opt/grand-tour/server,/opt/grand-tour/resolvers,/srv/gt/data",
    "--allow-write=/srv/gt/data",
    "--allow-net=0.0.0.0:8000",
    "--allow-env",
    "--allow-sys=osRelease",
    "--unstable-net",
  ]);
});

Deno.test("CA files, a custom SQLITE_PATH, RabbitMQ's view elsewhere: each granted, hosts of the URLs only", () => {
  const env = {
    HOST: "::",
    PORT: "9000",
    SQLITE_PATH: "/var/lib/gt/sqlite/words.db",
    POSTGRESQL_URL: "postgres://u:p@pg-primary:5432/grand_tour",
    POSTGRESQL_READ_URL: "postgres://u:p@pg-replica:5432/grand_tour",
    POSTGRESQL_CA_CERT: "certs/pg.pem",
    PATH_TO_REDIS_CERT: "/etc/gt/redis-ca.pem",
    REDIS_URL: "rediss://:secret@[fd00::7]:6380/0",
    ELASTICSEARCH_URL: "https://es1:9200,https://es2:9200",
    RABBITMQ_URL: "amqp://rabbit-a:5672,amqp://rabbit-b:5672",
    RABBITMQ_VIEW_PATH: "view/rabbitmq.db",
  };
  assertEquals(flagsOf(env), [
    "--allow-read=/opt/grand-tour/static,/opt/grand-tour/schema.graphql,/opt/grand-tour/stores," +
    "/srv/gt/.env,/srv/gt/.env.matrix,/srv/gt/certs/pg.pem,/etc/gt/redis-ca.pem," +
    "/var/lib/gt/sqlite,/srv/gt/view",
    "--allow-write=/var/lib/gt/sqlite,/srv/gt/view",
    "--allow-net=[::]:9000,pg-primary,pg-replica,es1,es2,[fd00::7],rabbit-a,rabbit-b",
    "--allow-env",
    "--allow-sys=osRelease",
  ]);
});

Deno.test("RATE_LIMIT_REDIS_URL: its host and RATE_LIMIT_REDIS_CA_CERT are granted too", () => {
  const env = {
    SQLITE_PATH: ":memory:",
    REDIS_URL: "redis://store-redis:6379/0",
    RATE_LIMIT_REDIS_URL: "rediss://u:secret@limits.internal:6380/1",
    RATE_LIMIT_REDIS_CA_CERT: "/etc/gt/limits-ca.pem",
  };
  assertEquals(flagsOf(env), [
    "--allow-read=/opt/grand-tour/static,/opt/grand-tour/schema.graphql,/opt/grand-tour/stores," +
    "/srv/gt/.env,/srv/gt/.env.matrix,/etc/gt/limits-ca.pem",
    "--allow-net=0.0.0.0:8000,store-redis,limits.internal",
    "--allow-env",
    "--allow-sys=osRelease",
  ]);
  // An invalid configuration still lets main.ts read that CA to say what is wrong with it.
  const reading = reportingFlags({ ...env, PORT: "x" }, WHERE)[0];
  assertStringIncludes(reading, "/etc/gt/limits-ca.pem");
});

Deno.test("EVENTS_URL: its Redis host is granted, and its CA file read", () => {
  const flags = flagsOf({
    EVENTS_URL: "rediss://:secret@events-redis:6380/0",
    EVENTS_CA_CERT: "certs/events.pem",
  });
  assertEquals(
    flags.find((f) => f.startsWith("--allow-net")),
    "--allow-net=0.0.0.0:8000,events-redis",
  );
  assertOk(flags[0].includes("/srv/gt/certs/events.pem"), flags[0]);
});

Deno.test("SQLite in memory: nothing is writable", () => {
  const flags = flagsOf({ SQLITE_PATH: ":memory:" });
  assertEquals(flags.filter((f) => f.startsWith("--allow-write")), []);
  assertEquals(
    flags[0],
    "--allow-read=/opt/grand-tour/static,/opt/grand-tour/schema.graphql,/opt/grand-tour/stores,/srv/gt/.env,/srv/gt/.env.matrix",
  );
});

Deno.test("MongoDB or Scylla (nodes learnt from the cluster) leave the network open, nothing else", () => {
  for (
    const env of [{ MONGODB_URL: "mongodb://m1:27017/?replicaSet=rs0" }, { SCYLLA_URL: "s1:9042" }]
  ) {
    const flags = flagsOf(env);
    assertOk(flags.includes("--allow-net"), JSON.stringify(flags));
    assertOk(
      flags.some((f) => f.startsWith("--allow-write=")) &&
        flags.some((f) => f.startsWith("--allow-read=")),
    );
  }
});

Deno.test("a path a Deno permission list cannot hold is refused, naming its variable", () => {
  const e = assertThrows(() => flagsOf({ SQLITE_PATH: "/var/a,b/words.db" }), LaunchError);
  assertStringIncludes(e.message, "SQLITE_PATH");
  const ca = assertThrows(
    () => flagsOf({ MYSQL_URL: "mysql://u:p@db/gt", MYSQL_CA_CERT: "/ca,1.pem" }),
    LaunchError,
  );
  assertStringIncludes(ca.message, "MYSQL_CA_CERT");
});

Deno.test("an invalid configuration: main.ts gets only what it needs to read it again and say why", () => {
  const env = { PORT: "not-a-port", PATH_TO_REDIS_CERT: "redis.pem", SQLITE_PATH: "/var/gt/w.db" };
  const expected = [
    "--allow-read=/opt/grand-tour/static,/opt/grand-tour/schema.graphql,/opt/grand-tour/stores," +
    "/srv/gt/.env,/srv/gt/.env.matrix,/srv/gt/redis.pem",
    "--allow-env",
  ];
  assertEquals(reportingFlags(env, WHERE), expected);
  assertEquals(launchFlags(WHERE, env), expected);
  assertThrows(() => parseConfig(env), ConfigError);
});

Deno.test("the child runs main.ts on the frozen server lock, without prompts, with the flags given", () => {
  assertEquals(childArgs(["--allow-read=/x"], "/r"), [
    "run",
    "--lock=/r/deno.lock",
    "--frozen",
    "--no-prompt",
    "--allow-read=/x",
    "--unstable-no-legacy-abort",
    "--v8-flags=--heap-growing-percent=50",
    "/r/main.ts",
  ]);
});

Deno.test("the start task runs the launcher with no network, write, sys or ffi of its own", () => {
  const args = startArgs();
  assertEquals(args.at(-1), `${ROOT}/server/launch.ts`);
  const allows = args.filter((a) => a.startsWith("--allow") || a === "-A");
  assertEquals(allows, ["--allow-env", "--allow-read", "--allow-run"]);
  assertOk(args.includes(`--lock=${ROOT}/deno.lock`) && args.includes("--frozen"));
});

/** The arguments of a running process (`/proc/<pid>/cmdline`). */
function commandLine(pid: number): string[] {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
}

Deno.test(
  "the start command with SQLite only: the gateway serves and writes, and runs with exactly the scoped flags",
  opts,
  async () => {
    const cwd = Deno.realPathSync(await Deno.makeTempDir({ prefix: "gateway-launch-" }));
    const env = { SQLITE_PATH: `${cwd}/data/words.db` };
    const server = await startServer(env, cwd);
    try {
      const all = { PORT: "0", HOST: "127.0.0.1", ...env };
      const expected = permissionFlags(parseConfig(all), all, { cwd, root: ROOT });
      const argv = commandLine(server.pid);
      assertEquals(argv.slice(1), childArgs(expected));
      for (
        const broad of [
          "-A",
          "--allow-all",
          "--allow-read",
          "--allow-write",
          "--allow-run",
          "--allow-ffi",
        ]
      ) {
        assertOk(!argv.includes(broad), `${broad} in ${argv.join(" ")}`);
      }
      assertEquals(expected.filter((f) => f.startsWith("--allow-write")), [
        `--allow-write=${cwd}/data`,
      ]);
      assertEquals(expected.find((f) => f.startsWith("--allow-net")), "--allow-net=127.0.0.1:0");

      assertEquals((await (await fetch(`${server.url}/healthz`)).json()).status, "ok");
      const page = await fetch(`${server.url}/`);
      assertEquals(page.status, 200);
      assertStringIncludes(await page.text(), '<button type="submit">Add</button>');
      const add = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          query:
            `mutation { addWord(store: SQLITE, word: "scoped", definition: "granted") { id } }`,
        }),
      });
      assertOk((await add.json()).data?.addWord?.id, "addWord answered");
      assertOk(
        Deno.statSync(`${cwd}/data/words.db`).isFile,
        "the database is in the granted directory",
      );
    } finally {
      const status = await server.stop("SIGTERM");
      assertEquals(status.code, 0, server.output());
      assertStringIncludes(server.output(), "SIGTERM: draining");
    }
    let gone = false;
    try {
      Deno.statSync(`/proc/${server.pid}`);
    } catch {
      gone = true;
    }
    assertOk(gone, "the gateway exited with the launcher");
  },
);

Deno.test(
  "a read the configuration asks outside the granted places is refused: MongoDB's tlsCAFile=/etc/passwd",
  opts,
  async () => {
    assertOk(
      Deno.readTextFileSync("/etc/passwd").length > 0,
      "the file exists and this test can read it",
    );
    // Port 9 on loopback: nothing listens; the driver reads its CA file before connecting.
    const url =
      "mongodb://127.0.0.1:9/?tls=true&tlsCAFile=/etc/passwd&serverSelectionTimeoutMS=300";
    const server = await startServer({ MONGODB_URL: url, CONNECT_TIMEOUT_MS: "300" });
    try {
      const refused = `NotCapable: Requires read access to "/etc/passwd"`;
      const deadline = Date.now() + 10_000;
      while (!server.output().includes(refused) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assertStringIncludes(server.output(), refused);
      const ready = await (await fetch(`${server.url}/readyz`)).json();
      const mongo = ready.stores.find((s: { store: string }) => s.store === "MONGODB");
      assertEquals(mongo.healthy, false);
    } finally {
      await server.stop();
    }
  },
);

Deno.test(
  "a configuration error is reported by main.ts itself with exit code 1; a path Deno cannot grant, by the launcher",
  opts,
  async () => {
    for (
      const [env, message] of [
        [{ PORT: "not-a-port" }, "configuration error: PORT must be a whole number"],
        [
          {
            POSTGRESQL_URL: "postgres://u:p@127.0.0.1/gt",
            POSTGRESQL_CA_CERT: "/nonexistent/ca.pem",
          },
          "configuration error: POSTGRESQL_CA_CERT: cannot read CA certificate at /nonexistent/ca.pem: NotFound",
        ],
        [
          { SQLITE_PATH: "/tmp/a,b/words.db" },
          "configuration error: SQLITE_PATH: /tmp/a,b holds a comma",
        ],
      ] as const
    ) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: startArgs(),
        env,
        clearEnv: true,
        cwd: await Deno.makeTempDir(),
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 1);
      assertStringIncludes(new TextDecoder().decode(out.stderr), message);
    }
  },
);

/** A TCP listener on loopback that accepts connections and never answers. */
function silentListener(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // closed
    }
  })();
  return {
    port: listener.addr.port,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by the peer
        }
      }
    },
  };
}

/** Every network store's URL, each at a silent listener on `host`. */
function silentStores(
  host: string,
  ports: number[],
  withDiscovering: boolean,
): Record<string, string> {
  const [pg, my, redis, es, rabbit, mongo, scylla] = ports;
  return {
    POSTGRESQL_URL: `postgres://u:p@${host}:${pg}/grand_tour`,
    MYSQL_URL: `mysql://u:p@${host}:${my}/grand_tour`,
    REDIS_URL: `redis://${host}:${redis}/0`,
    ELASTICSEARCH_URL: `http://${host}:${es}`,
    RABBITMQ_URL: `amqp://u:p@${host}:${rabbit}/%2F`,
    ...withDiscovering
      ? { MONGODB_URL: `mongodb://${host}:${mongo}/grand_tour`, SCYLLA_URL: `${host}:${scylla}` }
      : {},
    CONNECT_TIMEOUT_MS: "500",
    REQUEST_TIMEOUT_MS: "500",
  };
}

for (
  const [label, host, withDiscovering] of [
    ["the hosts of the URLs only (localhost)", "localhost", false],
    ["every host (MongoDB and Scylla too)", "127.0.0.1", true],
  ] as const
) {
  Deno.test(
    `every driver loads and connects under the scoped flags, network: ${label}`,
    opts,
    async () => {
      const listeners = Array.from({ length: 7 }, silentListener);
      const server = await startServer(
        silentStores(host, listeners.map((l) => l.port), withDiscovering),
      );
      try {
        const argv = commandLine(server.pid);
        const net = argv.find((a) => a.startsWith("--allow-net"));
        assertEquals(net, withDiscovering ? "--allow-net" : "--allow-net=127.0.0.1:0,localhost");
        // Connect attempts time out and are retried: a few rounds of every driver's connect path.
        await new Promise((r) => setTimeout(r, 4000));
        const ready = await (await fetch(`${server.url}/readyz`)).json();
        const configured = ready.stores.filter((s: { configured: boolean }) => s.configured);
        assertEquals(configured.length, withDiscovering ? 8 : 6);
        for (const word of ["NotCapable", "Requires ", "PermissionDenied"]) {
          assertOk(!server.output().includes(word), `${word}:\n${server.output()}`);
        }
      } finally {
        await server.stop();
        for (const l of listeners) l.close();
      }
    },
  );
}
