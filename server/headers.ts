/**
 * Security headers on every response (Hono `secureHeaders`): a
 * Content-Security-Policy without inline script, no framing, `nosniff`, no
 * referrer. GraphiQL's page gets its own, looser policy (see
 * {@linkcode GRAPHIQL_CSP}) on `/graphql` HTML responses only.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";

/** The page's policy: only this origin's files, no inline script or style, no framing. */
export const PAGE_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

/**
 * GraphiQL's policy. Its scripts are served from this origin too (no CDN,
 * no inline script), but its editor (Monaco) inserts `<style>` elements and
 * style attributes at run time, so styles need `'unsafe-inline'`; it runs
 * its language services in web workers (`worker-src 'self'`) and shows a
 * `data:` favicon and icons. Nothing else is loosened.
 */
export const GRAPHIQL_CSP = "default-src 'self'; script-src 'self'; worker-src 'self'; " +
  "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
  "frame-ancestors 'none'";

/**
 * The headers middleware. A `Content-Security-Policy` that a handler set
 * itself (GraphiQL's) is kept; everything else is set here.
 */
export function securityHeaders(): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: PAGE_CSP,
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    permissionsPolicy: { camera: [], microphone: [], geolocation: [] },
    overwrite: false,
  });
}

/** Gives an HTML response (GraphiQL) GraphiQL's policy; other responses are returned as they are. */
export function withGraphiQLPolicy(response: Response): Response {
  if (!response.headers.get("content-type")?.startsWith("text/html")) return response;
  const headers = new Headers(response.headers);
  headers.set("Content-Security-Policy", GRAPHIQL_CSP);
  return new Response(response.body, { status: response.status, headers });
}
