/**
 * The floors under the gateway's cost: the same 100 fixed words served three
 * ways, with no store and none of the gateway's layers, so that a run shows
 * what GraphQL on Deno costs before the gateway adds anything:
 *
 * - `GET /bare`: a bare `Deno.serve` handler, `Response.json` of the words;
 * - `POST /yoga/graphql`: graphql-yoga with its defaults over the gateway's
 *   own schema (schema.graphql), `words` resolving to the fixed words;
 * - `POST /jit/graphql`: the same with `@envelop/graphql-jit`, as the
 *   gateway runs it.
 *
 * Run by the benchmark as its own process (one core's worth of work, as the
 * gateway):
 *
 *     deno run --allow-read --allow-net --allow-env scripts/bench/floor_server.ts
 *
 * It prints `Listening on http://127.0.0.1:<port>/`; SIGTERM ends it.
 *
 * @module
 */
import { createSchema, createYoga } from "graphql-yoga";
import { useGraphQlJit } from "@envelop/graphql-jit";
import { FLOOR_PATHS, PAGE } from "./cells.ts";

/** The fixed words every floor serves, shaped as the gateway's answer for SQLite. */
function fixedWords(): Record<string, string>[] {
  return Array.from({ length: PAGE }, (_, i) => ({
    id: `0192f5a0-0000-7000-8000-${String(i).padStart(12, "0")}`,
    word: `word${i}`,
    definition: `the definition of word number ${i}, as long as a short sentence`,
    store: "SQLITE",
    createdAt: "2026-11-29T00:00:00.000Z",
  }));
}

function serve(): Deno.HttpServer {
  const words = fixedWords();
  const typeDefs = Deno.readTextFileSync(new URL("../../schema.graphql", import.meta.url));
  const schema = createSchema({ typeDefs, resolvers: { Query: { words: () => words } } });
  const yoga = createYoga({ schema, graphqlEndpoint: FLOOR_PATHS.yoga, logging: false });
  const jit = createYoga({
    schema,
    graphqlEndpoint: FLOOR_PATHS.jit,
    plugins: [useGraphQlJit()],
    logging: false,
  });
  return Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`Listening on http://127.0.0.1:${port}/`),
  }, (req) => {
    const { pathname } = new URL(req.url);
    if (pathname === FLOOR_PATHS.bare) return Response.json({ data: { words } });
    if (pathname === FLOOR_PATHS.yoga) return yoga.fetch(req);
    if (pathname === FLOOR_PATHS.jit) return jit.fetch(req);
    return new Response("not found", { status: 404 });
  });
}

if (import.meta.main) {
  const server = serve();
  Deno.addSignalListener("SIGTERM", async () => {
    await server.shutdown();
    Deno.exit(0);
  });
}
