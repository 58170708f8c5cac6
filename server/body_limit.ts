/**
 * Refuses request bodies larger than `MAX_BODY_BYTES` with 413 and a
 * GraphQL error `PAYLOAD_TOO_LARGE`. Hono's `bodyLimit` decides from
 * `Content-Length` before reading anything, and stops reading a chunked body
 * as soon as it passes the limit, so a large body is never read whole.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { graphqlErrorResponse } from "./error_response.ts";

/** The body-size guard for `maxBytes`. */
export function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () =>
      graphqlErrorResponse(
        413,
        "PAYLOAD_TOO_LARGE",
        `The request body is larger than the limit of ${maxBytes} bytes.`,
        { connection: "close" },
      ),
  });
}
