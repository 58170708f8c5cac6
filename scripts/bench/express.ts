/**
 * The classic apps users would otherwise run: one-file Express apps on Node
 * (bench/express/), one process each, written as the tutorials wrote them.
 * Each lists the first 100 words (`GET /words`) and adds one (`PUT /words`)
 * over the gateway's own table or keys, so both serve the same data. Their
 * packages are pinned by bench/express/package-lock.json and installed with
 * `npm ci` the first time a run needs them.
 *
 * @module
 */
import { type ServerProcess, startProcess } from "../server_process.ts";
import type { StoreName } from "../../stores/types.ts";
import { KEEP_OUTPUT } from "./processes.ts";
import { ROOT } from "./stores.ts";

/** Where the apps and their lock file live. */
export const EXPRESS_DIR = `${ROOT}bench/express`;

/** Each app's file and the variable it reads its store's URL from. */
export const EXPRESS_APPS: Partial<Record<StoreName, { file: string; urlVariable: string }>> = {
  POSTGRESQL: { file: "pg_app.mjs", urlVariable: "POSTGRESQL_URL" },
  REDIS: { file: "redis_app.mjs", urlVariable: "REDIS_URL" },
};

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd: EXPRESS_DIR, stdin: "null" }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { ok: out.success, output: text.trim() };
  } catch (e) {
    return { ok: false, output: `${cmd}: ${(e as Error).message}` };
  }
}

/**
 * Makes the apps runnable: Node present, and their packages installed
 * (`npm ci` when `node_modules` is missing). Resolves with Node's version,
 * or with why the apps cannot run.
 */
export async function prepareExpress(): Promise<{ node: string } | { why: string }> {
  const node = await run("node", ["--version"]);
  if (!node.ok) return { why: `node is not installed (${node.output.slice(0, 200)})` };
  try {
    await Deno.stat(`${EXPRESS_DIR}/node_modules/express`);
  } catch {
    console.log(`installing the Express apps' packages (npm ci in ${EXPRESS_DIR})…`);
    const npm = await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    if (!npm.ok) return { why: `npm ci failed: ${npm.output.slice(-500)}` };
  }
  return { node: node.output };
}

/**
 * Starts the app of `store` (one of {@linkcode EXPRESS_APPS}) on a free port
 * with the store's URL from `env`, and its CA file, if any, as Node's extra
 * CA (the apps set no TLS options of their own).
 */
export function startExpress(
  store: StoreName,
  env: Record<string, string>,
): Promise<ServerProcess> {
  const app = EXPRESS_APPS[store];
  if (!app) throw new Error(`no Express app for ${store}`);
  const ca = env[`${store}_CA_CERT`];
  return startProcess({
    command: "node",
    args: [app.file],
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      PORT: "0",
      [app.urlVariable]: env[app.urlVariable] ?? "",
      ...(ca ? { NODE_EXTRA_CA_CERTS: ca } : {}),
    },
    cwd: EXPRESS_DIR,
    keepOutput: KEEP_OUTPUT,
  });
}
