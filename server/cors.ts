/**
 * CORS for `/graphql`, limited to `CORS_ORIGINS`. With no origins listed
 * nothing is added: browsers then allow same-origin calls only (a cross-origin
 * `application/json` POST needs a preflight that gets no permission).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { CSRF_HEADER } from "./request_guards.ts";

/** The CORS middleware for `origins`, or a pass-through when the list is empty. */
export function corsFor(origins: readonly string[]): MiddlewareHandler {
  if (origins.length === 0) return (_c, next) => next();
  return cors({
    origin: [...origins],
    allowMethods: ["GET", "POST", "OPTIONS"],
    allowHeaders: ["content-type", "accept", "authorization", CSRF_HEADER],
    maxAge: 600,
  });
}
