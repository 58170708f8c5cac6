/**
 * A GraphQL-shaped error response for refusals that happen before
 * graphql-yoga sees the request (body too large, for instance), so every
 * client gets `{ errors: [{ message, extensions: { code } }] }` whatever
 * refused it.
 *
 * @module
 */

/** Builds a JSON response `{ errors: [{ message, extensions: { code } }] }` with `status`. */
export function graphqlErrorResponse(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ errors: [{ message, extensions: { code } }] }), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

const CODES: Record<number, string> = {
  405: "METHOD_NOT_ALLOWED",
  406: "NOT_ACCEPTABLE",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
};

/**
 * Gives an error response of `/graphql` that has no body (yoga answers an
 * unsupported method or `Accept` with status only) a GraphQL error body.
 */
export function withGraphQLErrorBody(response: Response): Response {
  if (response.status < 400 || response.headers.get("content-type")) return response;
  const code = CODES[response.status] ??
    (response.status < 500 ? "BAD_REQUEST" : "INTERNAL_SERVER_ERROR");
  const headers = Object.fromEntries(response.headers);
  return graphqlErrorResponse(
    response.status,
    code,
    `The gateway refused the request (HTTP ${response.status}).`,
    headers,
  );
}
