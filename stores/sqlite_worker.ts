/**
 * The SQLite database itself, on a worker thread. `node:sqlite` is
 * synchronous: on the gateway's event loop every commit's fsync would stall
 * every other store's requests for as long as the disk takes. Here it
 * blocks only this thread; `stores/sqlite.ts` talks to it by messages.
 *
 * Protocol: the parent posts {@linkcode SqliteRequest}s and gets one
 * {@linkcode SqliteReply} per request, with the same `seq`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { searchKey } from "./records.ts";
import type { ListQuery, NewWord, WordRecord } from "./types.ts";

/** A call from `stores/sqlite.ts`. */
export type SqliteRequest =
  | { seq: number; op: "open"; path: string }
  | { seq: number; op: "add"; record: NewWord }
  | { seq: number; op: "list"; query: ListQuery }
  | { seq: number; op: "ping" }
  | { seq: number; op: "close" };

/** The answer to one {@linkcode SqliteRequest}: a value, or an error's name and message only. */
export type SqliteReply =
  | { seq: number; ok: true; value?: WordRecord[] }
  | { seq: number; ok: false; name: string; message: string };

interface Open {
  db: DatabaseSync;
  insert: StatementSync;
  page: StatementSync;
  search: StatementSync;
  ping: StatementSync;
}

let state: Open | undefined;

function openDatabase(path: string): Open {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 1000;");
  db.exec(`CREATE TABLE IF NOT EXISTS words (
    id TEXT PRIMARY KEY,
    word TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL,
    search_key TEXT
  ) WITHOUT ROWID`);
  backfill(db);
  return {
    db,
    insert: db.prepare(
      "INSERT INTO words (id, word, definition, created_at, search_key) VALUES (?, ?, ?, ?, ?)",
    ),
    page: db.prepare(
      "SELECT id, word, definition, created_at FROM words WHERE id > ? ORDER BY id LIMIT ? OFFSET ?",
    ),
    search: db.prepare(
      `SELECT id, word, definition, created_at FROM words
       WHERE id > ?1 AND instr(search_key, ?2) > 0 ORDER BY id LIMIT ?3 OFFSET ?4`,
    ),
    ping: db.prepare("SELECT 1"),
  };
}

/**
 * A file written before search keys existed gets the column, and every word
 * without a key gets one (the gateway's own `searchKey`, called from SQL),
 * in one transaction; a no-op when every word has its key.
 */
function backfill(db: DatabaseSync): void {
  const columns = db.prepare("SELECT name FROM pragma_table_info('words')").all();
  if (!columns.some((c) => c.name === "search_key")) {
    db.exec("ALTER TABLE words ADD COLUMN search_key TEXT");
  }
  db.function("gt_search_key", { deterministic: true }, (w, d) => searchKey(String(w), String(d)));
  db.exec("UPDATE words SET search_key = gt_search_key(word, definition) WHERE search_key IS NULL");
}

function toRecord(row: Record<string, unknown>): WordRecord {
  return {
    id: String(row.id),
    word: String(row.word),
    definition: String(row.definition),
    createdAt: String(row.created_at),
  };
}

function opened(): Open {
  if (!state) throw new Error("sqlite: the database is not open");
  return state;
}

function handle(req: SqliteRequest): WordRecord[] | undefined {
  switch (req.op) {
    case "open":
      state ??= openDatabase(req.path);
      return;
    case "add": {
      const r = req.record;
      opened().insert.run(r.id, r.word, r.definition, r.createdAt, r.searchKey);
      return;
    }
    case "list": {
      const { search: needle, limit, offset, after = "" } = req.query;
      const s = opened();
      const rows = needle
        ? s.search.all(after, needle, limit, offset)
        : s.page.all(after, limit, offset);
      return rows.map(toRecord);
    }
    case "ping":
      opened().ping.get();
      return;
    case "close":
      if (state?.db.isOpen) state.db.close();
      state = undefined;
      return;
  }
}

self.onmessage = (e: MessageEvent<SqliteRequest>) => {
  const req = e.data;
  let reply: SqliteReply;
  try {
    reply = { seq: req.seq, ok: true, value: handle(req) };
  } catch (err) {
    const { name, message } = err instanceof Error ? err : new Error(String(err));
    reply = { seq: req.seq, ok: false, name, message };
  }
  self.postMessage(reply);
};
