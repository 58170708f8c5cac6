/**
 * Opaque cursors for `wordsConnection` (the GraphQL Cursor Connections
 * Specification): base64url of the word's id, its store and a fingerprint of
 * the folded search, so a cursor is refused (`BAD_USER_INPUT`) when it is
 * malformed or was made for another store or another search. A cursor is a
 * position in the id order, not an offset: words added before it between two
 * pages neither repeat nor shift the next page.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { badInput, UUID_V7 } from "./validation.ts";
import type { StoreName } from "../stores/types.ts";

interface Payload {
  /** Format version. */
  v: 1;
  s: StoreName;
  /** Fingerprint of the folded search ("" for none). */
  q: string;
  id: string;
}

/** The cursor of the word `id` in `store`'s list for the folded `search`. */
export function encodeCursor(store: StoreName, search: string | undefined, id: string): string {
  const payload: Payload = { v: 1, s: store, q: fingerprint(search), id };
  return Buffer.from(JSON.stringify(payload)).toString("base64url");
}

/**
 * The id a cursor points at; `BAD_USER_INPUT` (argument `after`) when it is
 * not one this gateway made for `store` and the folded `search`.
 */
export function decodeCursor(cursor: string, store: StoreName, search: string | undefined): string {
  let payload: Partial<Payload> | undefined;
  try {
    if (/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) {
      payload = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    }
  } catch {
    // malformed: refused below
  }
  if (payload?.v !== 1 || typeof payload.id !== "string" || !UUID_V7.test(payload.id)) {
    throw badInput("after", "after is not a cursor this gateway issued");
  }
  if (payload.s !== store) {
    throw badInput("after", `after is a cursor of another store, not of ${store}`);
  }
  if (payload.q !== fingerprint(search)) {
    throw badInput("after", "after is a cursor of another search: page with the same search");
  }
  return payload.id;
}

function fingerprint(search: string | undefined): string {
  if (search === undefined) return "";
  return createHash("sha256").update(search).digest("base64url").slice(0, 16);
}
