/**
 * The Lua scripts of the Redis store (`redis.ts`), each run with ioredis's
 * `defineCommand`: EVALSHA, and EVAL once per connection or after a NOSCRIPT.
 *
 * The scripts that walk the index (page, search, backfill) get it
 * (`grand_tour:words:ids`) as `KEYS[1]` and derive each word's hash key
 * inside, from the prefix `grand_tour:word:` in `ARGV` and an id read from the
 * index: a script cannot declare keys it only learns while it runs. The
 * scripts that are given their ids declare every key they touch:
 * {@linkcode SET_SEARCH_KEYS} the hashes (in many slots), {@linkcode REPLACE}
 * its one hash, {@linkcode REMOVE} the hash and the index. A single Redis
 * server does not check declarations, so all of this is correct there; it is
 * not Redis Cluster-safe, where the index and the hashes hash to different
 * slots and a script may only reach keys in the slot of the keys it declared
 * ({@linkcode REMOVE} and {@linkcode SET_SEARCH_KEYS} would be refused as
 * CROSSSLOT). A cluster deployment would need every key in one slot through a
 * hash tag (e.g. `{grand_tour}:words:ids` and `{grand_tour}:word:<id>`, which
 * puts all words on one node anyway), so new key names and a migration of
 * the existing keys.
 *
 * The index's members all have score 0, so `ZRANGE … BYLEX` is id order, and
 * a range starts at `-` (the first id) or `(<id>` (the ids after one). The
 * scanning scripts read at most a given number of ids per call, so that one
 * call never holds Redis up for long, and return where they stopped: the id
 * to continue after, or nil once the index has no more ids.
 *
 * A word's revision is its hash's `updatedAt`, or `createdAt` while it has
 * none. {@linkcode REPLACE} and {@linkcode REMOVE} compare it and write in one
 * script, which Redis runs atomically; its writes reach the append-only file
 * together (DEL and ZREM as one MULTI/EXEC) and, under `appendfsync always`,
 * are fsynced before the reply.
 *
 * @module
 */

/** A script as ioredis's `defineCommand` takes it. */
export interface ScriptDefinition {
  lua: string;
  /** Omitted when the caller passes the number of keys first. */
  numberOfKeys?: number;
}

/**
 * One page of words: `KEYS[1]` the index; `ARGV` the range start, the offset
 * and the limit, and the hash key prefix. Replies `id, word, definition,
 * createdAt, updatedAt` of each id in order, flat; nils for an id without a
 * hash, and for a never-edited word's `updatedAt`.
 */
export const PAGE: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], '+', 'BYLEX', 'LIMIT', ARGV[2], ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local r = redis.call('HMGET', ARGV[4] .. id, 'id', 'word', 'definition', 'createdAt', 'updatedAt')
  for i = 1, 5 do out[#out + 1] = r[i] end
end
return out
`,
};

/**
 * One stretch of a search: `KEYS[1]` the index; `ARGV` the range start, the
 * folded needle, the matches still to skip, the matches still wanted, the ids
 * to scan at most, and the hash key prefix. A word matches when its stored
 * `searchKey` contains the needle, found by `string.find` in plain mode (byte
 * for byte, no Lua pattern). Replies where it stopped, how many matches it
 * skipped, then `id, word, definition, createdAt, updatedAt` of each match it
 * kept, flat; it stops at the last wanted match.
 */
export const SEARCH: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local scan = tonumber(ARGV[5])
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], '+', 'BYLEX', 'LIMIT', 0, scan)
local needle, skip, want = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {false, 0}
for _, id in ipairs(ids) do
  local key = ARGV[6] .. id
  local searchKey = redis.call('HGET', key, 'searchKey')
  if searchKey and string.find(searchKey, needle, 1, true) then
    if skip > 0 then
      skip = skip - 1
      out[2] = out[2] + 1
    else
      local r = redis.call('HMGET', key, 'id', 'word', 'definition', 'createdAt', 'updatedAt')
      for i = 1, 5 do out[#out + 1] = r[i] end
      want = want - 1
      if want == 0 then
        out[1] = id
        return out
      end
    end
  end
end
if #ids == scan then out[1] = ids[scan] end
return out
`,
};

/**
 * One stretch of the backfill: `KEYS[1]` the index; `ARGV` the range start,
 * the ids to scan at most, the words wanted, and the hash key prefix. Replies
 * where it stopped, then `id, word, definition` of each word whose hash has
 * no `searchKey`, flat; ids without a hash are passed over.
 */
export const UNKEYED: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local scan = tonumber(ARGV[2])
local ids = redis.call('ZRANGE', KEYS[1], ARGV[1], '+', 'BYLEX', 'LIMIT', 0, scan)
local want = tonumber(ARGV[3])
local out = {false}
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  if redis.call('HEXISTS', key, 'searchKey') == 0 then
    local r = redis.call('HMGET', key, 'word', 'definition')
    if r[1] and r[2] then
      out[#out + 1] = id
      out[#out + 1] = r[1]
      out[#out + 1] = r[2]
      want = want - 1
      if want == 0 then
        out[1] = id
        return out
      end
    end
  end
end
if #ids == scan then out[1] = ids[scan] end
return out
`,
};

/**
 * Stores search keys: `KEYS` the words' hashes, `ARGV[i]` the key of
 * `KEYS[i]`. Sets `searchKey` only in a hash that exists and has none, so a
 * word deleted meanwhile is never recreated and a key written meanwhile is
 * kept. Replies how many it set.
 */
export const SET_SEARCH_KEYS: ScriptDefinition = {
  lua: `
local set = 0
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    set = set + redis.call('HSETNX', key, 'searchKey', ARGV[i])
  end
end
return set
`,
};

/**
 * Compare-and-set of one word: `KEYS[1]` its hash; `ARGV` the expected
 * revision, then the new `word`, `definition`, `searchKey` and `updatedAt`.
 * Writes them only if the hash's revision is the expected one, which a
 * missing hash never has, so a deleted word is never recreated (a plain HSET
 * would). Replies 1 when it wrote, else 0.
 */
export const REPLACE: ScriptDefinition = {
  numberOfKeys: 1,
  lua: `
local r = redis.call('HMGET', KEYS[1], 'updatedAt', 'createdAt')
if (r[1] or r[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'word', ARGV[2], 'definition', ARGV[3], 'searchKey', ARGV[4],
  'updatedAt', ARGV[5])
return 1
`,
};

/**
 * Compare-and-delete of one word: `KEYS[1]` its hash, `KEYS[2]` the index;
 * `ARGV` the expected revision and the id. Deletes the hash and removes the
 * id from the index, both or neither, only if the hash's revision is the
 * expected one. Replies 1 when it deleted, else 0.
 */
export const REMOVE: ScriptDefinition = {
  numberOfKeys: 2,
  lua: `
local r = redis.call('HMGET', KEYS[1], 'updatedAt', 'createdAt')
if (r[1] or r[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`,
};
