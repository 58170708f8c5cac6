/**
 * GraphiQL without a CDN and without inline script. The bundle of
 * `@graphql-yoga/render-graphiql` (library, styles, editor workers) is served
 * from `/graphiql/*` on this origin, so GraphiQL's page needs
 * `script-src 'self'` only; its options travel in a JSON data block, which a
 * browser never executes. The bundle (about 9 MB) is loaded on first use.
 *
 * @module
 */
import { Hono } from "hono";

/** Where the assets are served. */
export const GRAPHIQL_ASSETS = "/graphiql";

type Bundle = typeof import("@graphql-yoga/render-graphiql/graphiql");
let bundle: Promise<Bundle> | undefined;
const load = () => bundle ??= import("@graphql-yoga/render-graphiql/graphiql");

/** Monaco asks for its workers by label; each is a same-origin file. */
const SETUP = `self.MonacoEnvironment = {
  globalAPI: false,
  getWorkerUrl: (_id, label) => "${GRAPHIQL_ASSETS}/" + (label === "editorWorkerService" ? "editor" : label) + ".worker.js",
};
`;

const START = `YogaGraphiQL.renderYogaGraphiQL(
  document.getElementById("root"),
  JSON.parse(document.getElementById("graphiql-options").textContent),
);
`;

/** GraphiQL's HTML page for yoga's `renderGraphiQL` option. */
export function renderGraphiQLPage(options: Record<string, unknown> = {}): string {
  const title = String(options.title ?? "GraphiQL").replace(/[<>&"]/g, "");
  // "<" escaped so the JSON can never close its element
  const json = JSON.stringify(options).replaceAll("<", "\\u003c");
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>${title}</title>
    <link rel="icon" href="${GRAPHIQL_ASSETS}/favicon.ico">
    <link rel="stylesheet" href="${GRAPHIQL_ASSETS}/graphiql.css">
    <script type="application/json" id="graphiql-options">${json}</script>
    <script src="${GRAPHIQL_ASSETS}/setup.js"></script>
    <script src="${GRAPHIQL_ASSETS}/graphiql.js" defer></script>
    <script src="${GRAPHIQL_ASSETS}/start.js" defer></script>
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
  </body>
</html>
`;
}

const JS = "text/javascript; charset=utf-8";

/** Routes serving GraphiQL's files under {@linkcode GRAPHIQL_ASSETS}. */
export function graphiqlAssets(): Hono {
  const files: Record<string, [type: string, body: (b: Bundle) => BodyInit]> = {
    "setup.js": [JS, () => SETUP],
    "start.js": [JS, () => START],
    "graphiql.js": [JS, (b) => b.js],
    "graphiql.css": ["text/css; charset=utf-8", (b) => b.css],
    "editor.worker.js": [JS, (b) => b.editorWorkerService],
    "json.worker.js": [JS, (b) => b.jsonWorker],
    "graphql.worker.js": [JS, (b) => b.graphqlWorker],
    "favicon.ico": ["image/x-icon", (b) => dataUrlBytes(b.favicon)],
  };
  const app = new Hono();
  app.get("/:file", async (c) => {
    const file = files[c.req.param("file")];
    if (!file) return c.notFound();
    const [type, body] = file;
    return new Response(body(await load()), {
      headers: { "content-type": type, "cache-control": "public, max-age=3600" },
    });
  });
  return app;
}

function dataUrlBytes(url: string): Uint8Array<ArrayBuffer> {
  const base64 = url.slice(url.indexOf(",") + 1);
  return Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
}
