import { assertEquals } from "./support/assert.ts";
import { buildSchema, findBreakingChanges, GraphQLEnumType } from "graphql";
import { typeDefs } from "../server/graphql.ts";
import { STORE_NAMES } from "../stores/types.ts";

/** The fixed contract: the schema may add to it, never change it. */
const CONTRACT = `
enum Store { SQLITE MONGODB POSTGRESQL MYSQL SCYLLA ELASTICSEARCH REDIS RABBITMQ }
type Word { id: ID!  word: String!  definition: String!  store: Store!  createdAt: String! }
type StoreStatus { store: Store!  configured: Boolean!  healthy: Boolean!  latencyMs: Float  message: String }
type Query {
  words(store: Store!, search: String, limit: Int = 100, offset: Int = 0): [Word!]!
  stores: [StoreStatus!]!
}
type Mutation { addWord(store: Store!, word: String!, definition: String!): Word! }
`;

Deno.test("schema.graphql keeps the whole contract without breaking changes", () => {
  const breaking = findBreakingChanges(buildSchema(CONTRACT), buildSchema(typeDefs));
  assertEquals(breaking.map((b) => b.description), []);
});

Deno.test("the Store enum and the store registry name the same stores", () => {
  const store = buildSchema(typeDefs).getType("Store");
  if (!(store instanceof GraphQLEnumType)) throw new Error("Store is not an enum");
  const names = store.getValues().map((v) => v.name);
  assertEquals(names, [...STORE_NAMES]);
});

Deno.test("words defaults to limit 100 and offset 0", () => {
  const field = buildSchema(typeDefs).getQueryType()!.getFields().words;
  const defaults = Object.fromEntries(field.args.map((a) => [a.name, a.defaultValue]));
  assertEquals(defaults.limit, 100);
  assertEquals(defaults.offset, 0);
});
