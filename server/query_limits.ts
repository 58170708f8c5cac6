/**
 * Limits on the shape of a GraphQL document, from graphql-armor: tokens
 * (checked while parsing, so a huge document is never fully parsed), depth,
 * aliases, directives and cost (checked during validation). A refusal is a
 * GraphQL error `QUERY_TOO_COMPLEX` with `extensions.limit` naming the limit.
 * Field suggestions ("Did you mean …?") are hidden as well, so error
 * messages do not reveal the schema when introspection is off.
 *
 * @module
 */
import { GraphQLError, type ValidationContext } from "graphql";
import type { Plugin } from "graphql-yoga";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { SecurityConfig } from "./config.ts";

/** The limits {@linkcode useQueryLimits} enforces. */
export type QueryLimits = Pick<
  SecurityConfig,
  "maxDepth" | "maxAliases" | "maxTokens" | "maxCost" | "maxDirectives"
>;

/** The error code of every refusal. */
export const QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX";

/** graphql-armor with every protection on and coded errors. */
export function useQueryLimits(limits: QueryLimits): Plugin {
  const reject = (limit: string) => (ctx: ValidationContext | null, error: GraphQLError) => {
    const coded = new GraphQLError(error.message.replace(/^Syntax Error: /, ""), {
      extensions: { code: QUERY_TOO_COMPLEX, limit },
    });
    if (!ctx) throw coded; // the token limit runs in the parser, which has no validation context
    ctx.reportError(coded);
  };
  const rule = (limit: string) => ({ onReject: [reject(limit)], propagateOnRejection: false });
  return EnvelopArmorPlugin({
    maxTokens: { n: limits.maxTokens, ...rule("MAX_TOKENS") },
    maxDepth: { n: limits.maxDepth, ...rule("MAX_DEPTH") },
    maxAliases: { n: limits.maxAliases, ...rule("MAX_ALIASES") },
    maxDirectives: { n: limits.maxDirectives, ...rule("MAX_DIRECTIVES") },
    costLimit: { maxCost: limits.maxCost, ...rule("MAX_COST") },
    blockFieldSuggestion: { enabled: true },
  }) as Plugin;
}
