/**
 * Headless Chromium for end-to-end tests: Debian's `chromium` package driven
 * by playwright-core (no browser download), and the real server started with
 * the matrix's store settings. Without Chromium a test is skipped loudly on a
 * laptop and fails in CI.
 *
 * @module
 */
import { type Browser, chromium, type Page } from "playwright-core";
import { IN_CI, testEnv } from "./env.ts";
import { type GraphQLBody, startServer } from "./gateway.ts";
import { STORE_NAMES } from "../../stores/types.ts";

/** Debian's Chromium; `CHROMIUM_PATH` points elsewhere. */
export const CHROMIUM_PATH = testEnv.CHROMIUM_PATH || "/usr/bin/chromium";

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Where screenshots go (git-ignored). */
export const ARTIFACTS = new URL("../artifacts/", import.meta.url);

function chromiumInstalled(): boolean {
  try {
    return Deno.statSync(CHROMIUM_PATH).isFile;
  } catch {
    return false;
  }
}

/**
 * Registers a test that gets a launched browser, closed afterwards. Without
 * Chromium: ignored with a loud warning on a laptop, a failing test in CI.
 */
export function browserTest(
  name: string,
  fn: (browser: Browser, t: Deno.TestContext) => Promise<void>,
  need: { missing?: string; start?: string } = {},
) {
  const installed = chromiumInstalled();
  if (!installed && !IN_CI) {
    console.warn(
      `\n!!! SKIPPING browser test "${name}": no Chromium at ${CHROMIUM_PATH}.` +
        " Install it with `apt-get install -y chromium`. In CI this fails.\n",
    );
  } else if (need.missing !== undefined && !IN_CI) {
    console.warn(
      `\n!!! SKIPPING browser test "${name}": ${need.missing}. Run \`${need.start}\`. In CI this fails.\n`,
    );
  }
  Deno.test({
    name: `browser: ${name}`,
    ignore: (!installed || need.missing !== undefined) && !IN_CI,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      if (!installed) {
        throw new Error(
          `Chromium is required in CI: none at ${CHROMIUM_PATH} (apt-get install -y chromium)`,
        );
      }
      if (need.missing !== undefined) throw new Error(`required in CI: ${need.missing}`);
      const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ARGS });
      try {
        await fn(browser, t);
      } finally {
        await browser.close();
      }
    },
  });
}

/** The store settings of the test environment (URLs, CAs, Scylla options), for the server's env. */
export function storeEnv(): Record<string, string> {
  const names = ["SCYLLA_REPLICATION_FACTOR", "SCYLLA_DATACENTER"];
  for (const s of STORE_NAMES) {
    names.push(`${s}_URL`, `COMPOSE_${s}_URL`, `${s}_CA_CERT`, `PATH_TO_${s}_CERT`);
  }
  return Object.fromEntries(names.filter((n) => testEnv[n]).map((n) => [n, testEnv[n]]));
}

/** Starts the real server with `env` and waits until `/readyz` reports every store healthy. */
export async function startReadyServer(env: Record<string, string>, waitMs = 60_000) {
  const server = await startServer(env);
  const deadline = Date.now() + waitMs;
  while (true) {
    const res = await fetch(`${server.url}/readyz`).catch(() => undefined);
    const ready = res?.status === 200;
    await res?.body?.cancel();
    if (ready || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return server;
}

/**
 * Everything a page did that a test must see: dialogs opened, uncaught
 * errors, and what the Content-Security-Policy refused.
 */
export interface PageWatch {
  dialogs: string[];
  errors: string[];
  cspViolations: string[];
}

/** Records dialogs (dismissing them), uncaught page errors and CSP violations from `page`. */
export function watch(page: Page): PageWatch {
  const seen: PageWatch = { dialogs: [], errors: [], cspViolations: [] };
  page.on("dialog", (d) => {
    seen.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on("pageerror", (e) => seen.errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) {
      seen.cspViolations.push(m.text());
    }
  });
  return seen;
}

/** Saves a full-page screenshot as `tests/artifacts/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
}

/**
 * Runs one GraphQL operation on a started server over HTTP, as another
 * client would (behind the page's back); returns the parsed body.
 */
export async function gatewayCall(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLBody> {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return await res.json();
}

/** Like {@linkcode gatewayCall}, but returns `data` and throws on any error. */
export async function gatewayData<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const body = await gatewayCall(url, query, variables);
  if (body.errors?.length || !body.data) {
    throw new Error(`GraphQL call failed: ${JSON.stringify(body.errors ?? body)}`);
  }
  return body.data as T;
}
