/**
 * The graphql-yoga instance: the SDL in `schema.graphql` plus the resolver
 * map, with GraphiQL for browsers. Errors a resolver did not raise on
 * purpose are masked (no message, no stack reaches the client).
 *
 * @module
 */
import { createSchema, createYoga } from "graphql-yoga";
import { type GatewayContext, resolvers } from "../resolvers/mod.ts";
import type { StoreRegistry } from "../stores/registry.ts";
import { useErrorCodes } from "./error_codes.ts";

/** The SDL contract, read once. */
export const typeDefs = Deno.readTextFileSync(new URL("../schema.graphql", import.meta.url));

/** Options of {@linkcode createGraphQL}. */
export interface GraphQLOptions {
  registry: StoreRegistry;
  /** Serve GraphiQL to browsers. */
  graphiql: boolean;
}

/** Builds the `/graphql` handler. */
export function createGraphQL(options: GraphQLOptions) {
  return createYoga({
    schema: createSchema<GatewayContext>({ typeDefs, resolvers }),
    graphqlEndpoint: "/graphql",
    graphiql: options.graphiql ? { title: "Grand Tour gateway" } : false,
    landingPage: false,
    maskedErrors: { isDev: false },
    context: (): GatewayContext => ({ registry: options.registry }),
    logging: "warn",
    plugins: [useErrorCodes()],
  });
}
