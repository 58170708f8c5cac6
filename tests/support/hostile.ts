/**
 * Hostile inputs for the injection tests: query-language and protocol
 * payloads of every store the gateway writes to, and the input rules they
 * are judged against (written out here, independently of the gateway's own
 * validation).
 *
 * @module
 */

/** One hostile text and the language it attacks. */
export interface Payload {
  family: string;
  text: string;
}

const SQL = [
  "Robert'); DROP TABLE words;--",
  "' OR '1'='1",
  "' OR 1=1 --",
  '" OR ""="',
  "1' UNION SELECT id, word, definition, created_at FROM words --",
  "'; SELECT pg_sleep(10); --",
  "\\'; DROP DATABASE grand_tour; #",
  "%' OR word LIKE '%",
  "$$; DELETE FROM words; $$",
  "admin'/*",
  "'||(SELECT version())||'",
  "1; ATTACH DATABASE '/tmp/x.db' AS x; --",
];
const CQL = [
  "'; DROP KEYSPACE grand_tour; --",
  "' ALLOW FILTERING; --",
  "x') IF NOT EXISTS; TRUNCATE words; //",
  "' AND token(id) > 0 --",
  "BEGIN BATCH DELETE FROM words WHERE id = now(); APPLY BATCH",
  "/* */ SELECT * FROM system.local",
];
const MONGODB = [
  '{"$where": "sleep(10000) || true"}',
  '{"$gt": ""}',
  '{"$ne": null}',
  "$where",
  "$gt",
  "this.word != ''; return true",
  '{"$regex": ".*"}',
  ".*",
  "^.*$",
];
const ELASTICSEARCH = [
  "*",
  "word:*",
  "a OR b",
  "hello~",
  "/.*/",
  "definition:/.*/",
  "_exists_:word",
  "+word -definition",
  '"phrase" ~2',
  "[* TO *]",
  "word:(a OR b)^3",
  "?",
  '{"query":{"match_all":{}}}',
];
const REDIS = [
  "*1\r\n$4\r\nPING\r\n",
  "*1\n$4\nPING\n",
  "*3 $3 SET $4 evil $1 1",
  "FLUSHALL",
  "EVAL \"return redis.call('flushall')\" 0",
  "KEYS *",
  "{words}:*",
];
const AMQP = [
  "AMQP\u0000\u0000\u0009\u0001",
  "AMQP 0-9-1",
  "amq.rabbitmq.reply-to",
  "#.words.*",
  '{"x-stream-offset":"first"}',
  "frame-end \u00CE",
  "content\u0085header",
];

/** Every hostile text, by family. */
export const PAYLOADS: readonly Payload[] = [
  ...SQL.map((text) => ({ family: "SQL", text })),
  ...CQL.map((text) => ({ family: "CQL", text })),
  ...MONGODB.map((text) => ({ family: "MongoDB", text })),
  ...ELASTICSEARCH.map((text) => ({ family: "Elasticsearch", text })),
  ...REDIS.map((text) => ({ family: "Redis", text })),
  ...AMQP.map((text) => ({ family: "AMQP", text })),
];

/** MongoDB operators sent as JSON objects instead of strings: GraphQL must refuse them. */
export const OPERATOR_OBJECTS: readonly unknown[] = [
  { $ne: null },
  { $gt: "" },
  { $where: "1" },
  ["$or"],
];

// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

/** Whether the README's rules accept `text` as a word (`multiline` false) or a definition. */
export function acceptedText(text: string, multiline: boolean): boolean {
  const t = text.trim();
  const length = [...t].length;
  return t.isWellFormed() && length >= 1 && length <= 256 && !CONTROL.test(t) &&
    (multiline || !/[\t\n]/.test(t));
}

/** Whether the README's rules accept `text` as a search needle. */
export function acceptedSearch(text: string): boolean {
  return text.isWellFormed() && [...text].length <= 256 && !CONTROL.test(text);
}
