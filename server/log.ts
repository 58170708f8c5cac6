/**
 * Log lines made safe: one line per message, errors as `Name: message`
 * without a stack (some drivers put the stack of an inner error into their
 * message), and every connection string and password of the configured
 * stores redacted (the same redaction the stores use). Used for
 * graphql-yoga's logger and for the stores' log.
 *
 * @module
 */
import type { YogaLogger } from "graphql-yoga";
import { redact } from "../stores/errors.ts";

/** `text` on one line, without stack frames or `secrets`, at most 500 characters. */
export function safeLine(text: string, secrets: readonly string[] = []): string {
  return redact(text, secrets)
    .replace(/\s*\n\s*at [^\n]*/g, "") // stack frames, including a cut-off last one
    .replace(/\s*\n\s*/g, " ")
    .slice(0, 500);
}

/** The stores' log (`StoreRegistry`'s `log` option): safe lines on stderr. */
export function storeLog(secrets: readonly string[] = []): (line: string) => void {
  return (line) => console.error(safeLine(line, secrets));
}

/** A warn/error logger for yoga that never prints stacks or `secrets`. */
export function safeLogger(secrets: readonly string[] = []): YogaLogger {
  const line = (args: unknown[]) => safeLine(args.map(describe).join(" "), secrets);
  return {
    debug: () => {},
    info: () => {},
    warn: (...args: unknown[]) => console.warn(`[graphql] ${line(args)}`),
    error: (...args: unknown[]) => console.error(`[graphql] ${line(args)}`),
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
