/**
 * Just enough of the Redis protocol (RESP2) for the matrix's readiness
 * probes: send commands, read simple, error, integer and bulk replies, on a
 * plain or TLS connection, with a deadline.
 *
 * @module
 */
import { MATRIX } from "./types.ts";

const enc = new TextEncoder();

/** One command as a RESP array of bulk strings. */
function encode(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("")}`;
}

/** Splits `count` complete replies off the front of `bytes`, or undefined when more must be read. */
function parseReplies(bytes: Uint8Array, count: number): string[] | undefined {
  const out: string[] = [];
  const dec = new TextDecoder();
  let i = 0;
  while (out.length < count) {
    const eol = bytes.indexOf(13, i);
    if (eol < 0 || eol + 1 >= bytes.length) return undefined;
    const line = dec.decode(bytes.subarray(i, eol));
    i = eol + 2;
    if (line[0] === "$") {
      const n = Number(line.slice(1));
      if (n < 0) {
        out.push("");
        continue;
      }
      if (bytes.length < i + n + 2) return undefined;
      out.push(dec.decode(bytes.subarray(i, i + n)));
      i += n + 2;
    } else {
      out.push(line);
    }
  }
  return out;
}

/**
 * Sends `commands` over `conn` in one pipeline and returns one reply each
 * (a bulk reply's text, or a status line such as "+OK" / "-ERR …"). Closes `conn`.
 */
export async function pipeline(
  conn: Deno.Conn,
  commands: string[][],
  timeoutMs = 2_000,
): Promise<string[]> {
  try {
    await conn.write(enc.encode(commands.map(encode).join("")));
    let got = new Uint8Array(0);
    const buf = new Uint8Array(16384);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const replies = parseReplies(got, commands.length);
      if (replies) return replies;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("redis: no reply");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf),
        new Promise<null>((r) => timer = setTimeout(() => r(null), left)),
      ]).finally(() => clearTimeout(timer));
      if (n === null) throw new Error("redis: connection closed or no reply");
      const next = new Uint8Array(got.length + n);
      next.set(got);
      next.set(buf.subarray(0, n), got.length);
      got = next;
    }
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** The AUTH command of the matrix user. */
export const AUTH = ["AUTH", MATRIX.user, MATRIX.password];

/** AUTH + PING over `conn`; true when both answer as a serving Redis does. Closes `conn`. */
export async function authPing(conn: Deno.Conn): Promise<boolean> {
  const [a, p] = await pipeline(conn, [AUTH, ["PING"]]);
  return a === "+OK" && p === "+PONG";
}
