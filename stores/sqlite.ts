/**
 * The embedded store: SQLite through `node:sqlite`, built into Deno, so the
 * gateway runs with nothing installed. Always configured.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fold } from "./records.ts";
import type { ListQuery, OpenStore, WordRecord, WordStore } from "./types.ts";

/** Opens (creating when missing) the database file at `config.url`, or `:memory:`. */
export const open: OpenStore = (config) => {
  const path = config.url;
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 1000;");
  db.function("gt_fold", { deterministic: true }, (s) => fold(String(s)));
  db.exec(`CREATE TABLE IF NOT EXISTS words (
    id TEXT PRIMARY KEY,
    word TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at TEXT NOT NULL
  ) WITHOUT ROWID`);
  const insert = db.prepare(
    "INSERT INTO words (id, word, definition, created_at) VALUES (?, ?, ?, ?)",
  );
  const page = db.prepare(
    "SELECT id, word, definition, created_at FROM words ORDER BY id LIMIT ? OFFSET ?",
  );
  const search = db.prepare(
    `SELECT id, word, definition, created_at FROM words
     WHERE instr(gt_fold(word), ?1) > 0 OR instr(gt_fold(definition), ?1) > 0
     ORDER BY id LIMIT ?2 OFFSET ?3`,
  );
  const toRecord = (row: Record<string, unknown>): WordRecord => ({
    id: String(row.id),
    word: String(row.word),
    definition: String(row.definition),
    createdAt: String(row.created_at),
  });

  const store: WordStore = {
    add(r: WordRecord) {
      insert.run(r.id, r.word, r.definition, r.createdAt);
      return Promise.resolve();
    },
    list({ search: needle, limit, offset }: ListQuery) {
      const rows = needle ? search.all(fold(needle), limit, offset) : page.all(limit, offset);
      return Promise.resolve(rows.map(toRecord));
    },
    ping() {
      db.prepare("SELECT 1").get();
      return Promise.resolve();
    },
    close() {
      if (db.isOpen) db.close();
      return Promise.resolve();
    },
  };
  return Promise.resolve(store);
};
