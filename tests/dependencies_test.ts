/**
 * A fresh machine's `deno task start` fetches what the gateway loads and no
 * more. `deno task` installs every npm package named by deno.json's imports
 * (and, with a lock file configured, by the lock) before it runs any task,
 * and `deno run --lock` every package of its lock: so deno.json names no
 * library that only the tests, the benchmark or the matrix use, deno.json
 * configures no lock file, the start task locks the server's packages in
 * deno.lock, and the other tasks lock theirs in deno.dev.lock
 * (docs/performance.md, "First start").
 */
import { assertEquals, assertOk } from "./support/assert.ts";

const ROOT = new URL("../", import.meta.url);
const TEST_ONLY = ["autocannon", "fast-check", "playwright-core", "yaml"];

function json(path: string) {
  return JSON.parse(Deno.readTextFileSync(new URL(path, ROOT)));
}

/** `name` of a lock file's npm key `name@version[_peer…]`. */
function packageName(key: string): string {
  return key.slice(0, key.indexOf("@", 1));
}

Deno.test("deno.json: no lock file of its own, test-only libraries mapped to tests/deps only", () => {
  const config = json("deno.json");
  assertEquals(config.lock, false);
  for (const name of TEST_ONLY) {
    assertOk(
      String(config.imports[name]).startsWith("./tests/deps/"),
      `${name} -> ${config.imports[name]}`,
    );
  }
  const npm = Object.values(config.imports as Record<string, string>).filter((v) =>
    v.startsWith("npm:")
  );
  for (const spec of npm) {
    assertOk(!TEST_ONLY.some((name) => spec.startsWith(`npm:${name}@`)), spec);
  }
});

Deno.test("deno.lock holds none of the test-only libraries; deno.dev.lock holds them all", () => {
  const server = Object.keys(json("deno.lock").npm).map(packageName);
  const dev = Object.keys(json("deno.dev.lock").npm).map(packageName);
  for (const name of TEST_ONLY) {
    assertOk(!server.includes(name), `${name} in deno.lock`);
    assertOk(dev.includes(name), `${name} missing from deno.dev.lock`);
  }
  for (const name of server) assertOk(dev.includes(name), `${name} missing from deno.dev.lock`);
});

Deno.test("start and dev run on deno.lock, every other task on deno.dev.lock", () => {
  const tasks: Record<string, string> = json("deno.json").tasks;
  for (const [name, command] of Object.entries(tasks)) {
    const lock = ["start", "dev"].includes(name) ? "--lock=deno.lock" : "--lock=deno.dev.lock";
    assertOk(command.split(/\s+/).includes(lock), `${name}: ${command}`);
  }
  assertOk(tasks.start.split(/\s+/).includes("--frozen"), "start runs on a frozen lock");
});
