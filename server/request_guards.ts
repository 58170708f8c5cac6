/**
 * Checks on the HTTP request before graphql-yoga parses it: a POST body must
 * be JSON (anything else is 415 `UNSUPPORTED_MEDIA_TYPE`), and a request a
 * browser could send cross-site without a CORS preflight must carry the CSRF
 * header (`@graphql-yoga/plugin-csrf-prevention`; 403 `CSRF_PREVENTED`).
 * A GET's `variables` and `extensions` must be JSON (400 `BAD_REQUEST`;
 * yoga would answer an unexpected 500).
 *
 * @module
 */
import { createGraphQLError, type Plugin } from "graphql-yoga";
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";

/** The header a browser client sends to show it is not a cross-site form or link. */
export const CSRF_HEADER = "x-graphql-yoga-csrf";

const JSON_TYPES = ["application/json", "application/graphql+json"];

/** Refuses non-JSON POST bodies, then applies CSRF prevention. */
export function useRequestGuards(): Plugin[] {
  const csrf = useCSRFPrevention({ requestHeaders: [CSRF_HEADER] });
  return [
    {
      onRequestParse({ request, url }) {
        if (request.method === "GET") return checkJsonParams(url);
        if (request.method !== "POST") return;
        // the same match as yoga's JSON parser, so what passes here is parsed as JSON
        const type = request.headers.get("content-type")?.split(",")[0];
        if (type && JSON_TYPES.some((t) => type === t || type.startsWith(`${t};`))) return;
        throw createGraphQLError(
          "A POST body must be JSON: send Content-Type: application/json.",
          { extensions: { code: "UNSUPPORTED_MEDIA_TYPE", http: { status: 415 } } },
        );
      },
    },
    {
      onRequestParse(payload) {
        try {
          return csrf.onRequestParse?.(payload);
        } catch (e) {
          throw createGraphQLError(
            `${
              (e as Error).message
            }: send the ${CSRF_HEADER} header (any value) with GET requests.`,
            { extensions: { code: "CSRF_PREVENTED", http: { status: 403 } } },
          );
        }
      },
    },
  ];
}

function checkJsonParams(url: URL): void {
  for (const name of ["variables", "extensions"]) {
    const value = url.searchParams.get(name);
    if (!value) continue;
    try {
      JSON.parse(value);
    } catch {
      throw createGraphQLError(`The "${name}" parameter is not valid JSON.`, {
        extensions: { code: "BAD_REQUEST", http: { status: 400 } },
      });
    }
  }
}
