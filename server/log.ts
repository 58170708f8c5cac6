/**
 * The one logger. Log lines made safe: one line per message, errors as
 * `Name: message` without a stack (some drivers put the stack of an inner
 * error into their message), and every connection string and password of
 * the configured stores redacted (the same redaction the stores use). Used
 * for the gateway's own lines (start-up, shutdown), graphql-yoga's logger
 * and the stores' log.
 *
 * With `LOG_FORMAT=json` each line is one JSON object instead:
 * `{"time":"<ISO>","level":"info","store":"REDIS","event":"connected"}`,
 * `store` only on a store's line, `component: "graphql"` on yoga's; the
 * event is the text line, redacted the same way. Lines go to the same
 * stream in both formats: info to stdout, warnings and errors to stderr
 * (store lines to stderr, whatever their level).
 *
 * @module
 */
import type { YogaLogger } from "graphql-yoga";
import { redact } from "../stores/errors.ts";
import type { StoreLog } from "../stores/managed.ts";
import type { LogFormat } from "./config.ts";

/** How much a line matters. */
export type LogLevel = "info" | "warn" | "error";

/** `text` on one line, without stack frames or `secrets`, at most 500 characters. */
export function safeLine(text: string, secrets: readonly string[] = []): string {
  return redact(text, secrets)
    .replace(/\s*\n\s*at [^\n]*/g, "") // stack frames, including a cut-off last one
    .replace(/\s*\n\s*/g, " ")
    .slice(0, 500);
}

/**
 * The JSON form of a line already made safe: `time`, `level`, `store` for
 * a `[store NAME] event` line, `component` for a `[graphql] event` line,
 * and `event`.
 */
export function jsonLine(level: LogLevel, line: string, time: Date = new Date()): string {
  const store = line.match(/^\[store ([A-Z]+)\] (.*)$/);
  const graphql = line.match(/^\[graphql\] (.*)$/);
  const fields = store
    ? { store: store[1], event: store[2] }
    : graphql
    ? { component: "graphql", event: graphql[1] }
    : { event: line };
  return JSON.stringify({ time: time.toISOString(), level, ...fields });
}

/** `text` as written in `format`: made safe, then as JSON for `json`. */
export function formatLine(
  format: LogFormat,
  level: LogLevel,
  text: string,
  secrets: readonly string[] = [],
): string {
  const line = safeLine(text, secrets);
  return format === "json" ? jsonLine(level, line) : line;
}

/** The gateway's own lines (start-up, shutdown): info on stdout, the rest on stderr. */
export interface GatewayLog {
  info(text: string): void;
  warn(text: string): void;
  error(text: string): void;
}

/** A {@linkcode GatewayLog} writing `format`, without `secrets`. */
export function gatewayLog(format: LogFormat, secrets: readonly string[] = []): GatewayLog {
  return {
    info: (text) => console.log(formatLine(format, "info", text, secrets)),
    warn: (text) => console.warn(formatLine(format, "warn", text, secrets)),
    error: (text) => console.error(formatLine(format, "error", text, secrets)),
  };
}

/** The stores' log (`StoreRegistry`'s `log` option): safe lines on stderr. */
export function storeLog(secrets: readonly string[] = [], format: LogFormat = "text"): StoreLog {
  return (line, level) => console.error(formatLine(format, level, line, secrets));
}

/** A warn/error logger for yoga that never prints stacks or `secrets`. */
export function safeLogger(
  secrets: readonly string[] = [],
  format: LogFormat = "text",
): YogaLogger {
  const line = (level: LogLevel, args: unknown[]) =>
    formatLine(format, level, `[graphql] ${args.map(describe).join(" ")}`, secrets);
  return {
    debug: () => {},
    info: () => {},
    warn: (...args: unknown[]) => console.warn(line("warn", args)),
    error: (...args: unknown[]) => console.error(line("error", args)),
  };
}

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
