/**
 * `LOG_FORMAT=json`: the line formatter on its own, and the real server
 * process (SQLite only), whose every output line, from the store's
 * `connected` to the shutdown, and a configuration error, is one JSON
 * object.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { startServer } from "./support/gateway.ts";
import { formatLine, jsonLine } from "../server/log.ts";
import { startArgs } from "../scripts/start_command.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TIME = new Date("2026-11-29T03:04:05.678Z");

Deno.test("a store's line becomes time, level, store and event", () => {
  assertEquals(
    JSON.parse(jsonLine("info", "[store REDIS] connected", TIME)),
    { time: "2026-11-29T03:04:05.678Z", level: "info", store: "REDIS", event: "connected" },
  );
});

Deno.test("yoga's lines carry component graphql, the gateway's own lines only the event", () => {
  assertEquals(JSON.parse(jsonLine("error", "[graphql] Error: boom", TIME)), {
    time: TIME.toISOString(),
    level: "error",
    component: "graphql",
    event: "Error: boom",
  });
  assertEquals(JSON.parse(jsonLine("info", 'SIGTERM: "draining" [1/2]', TIME)), {
    time: TIME.toISOString(),
    level: "info",
    event: 'SIGTERM: "draining" [1/2]',
  });
});

Deno.test("a JSON line is redacted as a text line is, and stays on one line without its stack", () => {
  const secret = "postgres://admin:hunter2-secret@db.internal:5432/words";
  const text =
    `[store POSTGRESQL] call failed: Error: refused by ${secret}\n    at connect (pg.js:1:1)`;
  const json = formatLine("json", "warn", text, [secret]);
  assertEquals(formatLine("text", "warn", text, [secret]).includes("hunter2"), false);
  assertOk(!json.includes("hunter2") && !json.includes("admin"), json);
  assertOk(!json.includes("\n"), "one line");
  const parsed = JSON.parse(json);
  assertEquals([parsed.level, parsed.store], ["warn", "POSTGRESQL"]);
  assertEquals(
    parsed.event,
    formatLine("text", "warn", text, [secret]).replace(/^\[store \w+\] /, ""),
  );
  assertOk(!parsed.event.includes(" at connect"), parsed.event);
});

/** Every non-empty line of `output`, parsed; fails naming the first line that is not JSON. */
function jsonLines(output: string): Record<string, string>[] {
  return output.split("\n").filter((l) => l.trim()).map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
}

Deno.test(
  "with LOG_FORMAT=json every line the server writes, start-up to shutdown, is a JSON object",
  opts,
  async () => {
    const server = await startServer({ LOG_FORMAT: "json", SHUTDOWN_DRAIN_MS: "0" });
    const status = await server.stop("SIGTERM");
    assertEquals(status.code, 0);
    const lines = jsonLines(server.output());
    for (const line of lines) {
      assertOk(!Number.isNaN(Date.parse(line.time)) && line.time.endsWith("Z"), line.time);
      assertOk(["info", "warn", "error"].includes(line.level), line.level);
      assertOk(typeof line.event === "string" && line.event.length > 0, JSON.stringify(line));
    }
    const connected = lines.find((l) => l.store === "SQLITE");
    assertEquals(connected && [connected.level, connected.event], ["info", "connected"]);
    assertOk(lines.some((l) => l.event.startsWith("Listening on http://localhost:")));
    assertOk(lines.some((l) => l.event.startsWith("SIGTERM: draining")), server.output());
  },
);

Deno.test("with LOG_FORMAT=json a configuration error is a JSON line too", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "gateway-test-" });
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: startArgs(),
    cwd,
    clearEnv: true,
    env: {
      LOG_FORMAT: "json",
      PORT: "0",
      SQLITE_PATH: ":memory:",
      NO_COLOR: "1",
      METRICS: "maybe",
    },
  }).output();
  assertEquals(code, 1);
  const lines = jsonLines(new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr));
  assertEquals(lines.length, 1);
  assertEquals(lines[0].level, "error");
  assertEquals(lines[0].event, 'configuration error: METRICS must be true or false, got "maybe"');
});
