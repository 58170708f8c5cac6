/**
 * The matrix environment file (`.env.matrix` and `${root}/env`): KEY=value
 * lines that `deno task start` and `deno task test` read. Updates merge with
 * what is there, so bringing up one service keeps the others' lines.
 *
 * @module
 */

const HEADER = "# Written by `deno task matrix up`; `down` removes the lines of what it stopped.";

/** Parses KEY=value lines (optionally quoted with ' or "); comments and blanks are skipped. */
export function parseEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!m) continue;
    let v = m[2];
    if (v.length >= 2 && (v[0] === "'" || v[0] === '"') && v.at(-1) === v[0]) v = v.slice(1, -1);
    out.set(m[1], v);
  }
  return out;
}

/** Formats entries as KEY=value lines, single-quoting values a dotenv parser would otherwise cut. */
export function formatEnv(entries: Map<string, string>): string {
  const lines = [...entries].map(([k, v]) => {
    if (/^[^\s#'"`\\]*$/.test(v)) return `${k}=${v}`;
    return v.includes("'") ? `${k}="${v}"` : `${k}='${v}'`;
  });
  return `${HEADER}\n${lines.join("\n")}\n`;
}

/**
 * Sets `set` and deletes `remove` in the env file at `path` (created when
 * missing), keeping every other line's value and order. When nothing but
 * `MATRIX_CA_CERT` would remain, the file is deleted.
 */
export async function updateEnvFile(
  path: string,
  set: Record<string, string>,
  remove: string[] = [],
): Promise<void> {
  let entries = new Map<string, string>();
  try {
    entries = parseEnv(await Deno.readTextFile(path));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const k of remove) entries.delete(k);
  for (const [k, v] of Object.entries(set)) entries.set(k, v);
  if ([...entries.keys()].every((k) => k === "MATRIX_CA_CERT")) {
    await Deno.remove(path).catch(() => {});
    return;
  }
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, formatEnv(entries));
  await Deno.rename(tmp, path);
}
