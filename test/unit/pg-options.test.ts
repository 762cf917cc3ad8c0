/**
 * What the `async-batcher/pg` batchers refuse at construction: a `TypeError` or `RangeError`
 * naming the option, before any query is sent. And the defaults they put in the core options.
 */
import { PgInsertBatcher, PgLoadBatcher } from "async-batcher/pg";
import { describe, expect, it } from "vitest";
import { FakePool } from "../helpers/fake-pg.js";

const pool = new FakePool([{ name: "a", type: "integer" }]);
const insert = (over: Record<string, unknown>) => () =>
  new PgInsertBatcher({ pool, table: "t", columns: ["a", "b"], ...over } as never);
const load = (over: Record<string, unknown>) => () =>
  new PgLoadBatcher({ pool, table: "t", key: "id", ...over } as never);

describe("PgInsertBatcher options", () => {
  it.each([
    ["no options", () => new PgInsertBatcher(undefined as never), TypeError, /options/],
    ["no pool", insert({ pool: undefined }), TypeError, /^pool must/],
    [
      "prepare that is not a boolean",
      insert({ prepare: "yes" }),
      TypeError,
      /^prepare must be a boolean/,
    ],
    ["a pool without query()", insert({ pool: { end() {} } }), TypeError, /^pool must/],
    ["no table", insert({ table: undefined }), TypeError, /^table must/],
    ["an empty table name", insert({ table: "" }), TypeError, /^table must/],
    [
      "a table name with NUL",
      insert({ table: "t\0x" }),
      TypeError,
      /^table must not contain a NUL/,
    ],
    [
      "a table name over 63 bytes",
      insert({ table: "é".repeat(32) }),
      RangeError,
      /^table must be at most 63 bytes/,
    ],
    ["a table object without name", insert({ table: { schema: "s" } }), TypeError, /^table\.name/],
    [
      "a schema with NUL",
      insert({ table: { schema: "\0", name: "t" } }),
      TypeError,
      /^table\.schema/,
    ],
    ["a table array", insert({ table: ["s", "t"] }), TypeError, /^table must/],
    ["no columns", insert({ columns: undefined }), TypeError, /^columns must be an array/],
    ["empty columns", insert({ columns: [] }), TypeError, /^columns must name at least one/],
    ["a duplicate column", insert({ columns: ["a", "a"] }), TypeError, /^columns names "a" twice/],
    ["a non-string column", insert({ columns: ["a", 1] }), TypeError, /^columns\[1\]/],
    [
      "a column with NUL",
      insert({ columns: ["a\0"] }),
      TypeError,
      /^columns\[0\] must not contain a NUL/,
    ],
    [
      "returning that is a string",
      insert({ returning: "id" }),
      TypeError,
      /^returning must be "\*"/,
    ],
    ["empty returning", insert({ returning: [] }), TypeError, /^returning must name at least one/],
    [
      "a duplicate returning column",
      insert({ returning: ["id", "id"] }),
      TypeError,
      /^returning names/,
    ],
    [
      "onConflict that is not an object",
      insert({ onConflict: "nothing" }),
      TypeError,
      /^onConflict must be/,
    ],
    [
      "onConflict without target",
      insert({ onConflict: { action: "nothing" } }),
      TypeError,
      /^onConflict\.target/,
    ],
    [
      "an empty target",
      insert({ onConflict: { target: [], action: "nothing" } }),
      TypeError,
      /^onConflict\.target must name/,
    ],
    [
      "a target not among columns",
      insert({ onConflict: { target: ["z"], action: "nothing" } }),
      TypeError,
      /^onConflict\.target: "z" is not one of columns/,
    ],
    [
      "an unknown action",
      insert({ onConflict: { target: ["a"], action: "ignore" } }),
      TypeError,
      /^onConflict\.action must be "nothing" or "update"/,
    ],
    [
      "set with nothing",
      insert({ onConflict: { target: ["a"], action: "nothing", set: ["b"] } }),
      TypeError,
      /^onConflict\.set goes with action "update"/,
    ],
    [
      "set not among columns",
      insert({ onConflict: { target: ["a"], action: "update", set: ["z"] } }),
      TypeError,
      /^onConflict\.set: "z"/,
    ],
    [
      "an empty set",
      insert({ onConflict: { target: ["a"], action: "update", set: [] } }),
      TypeError,
      /^onConflict\.set must name/,
    ],
    [
      "update with every column in target",
      insert({ onConflict: { target: ["a", "b"], action: "update" } }),
      TypeError,
      /nothing to set/,
    ],
    ["keyOf", insert({ keyOf: (r: unknown) => r }), TypeError, /^keyOf cannot be set/],
    ["dedupe", insert({ dedupe: true }), TypeError, /^dedupe cannot be set/],
    ["executor", insert({ executor: {} }), TypeError, /^executor cannot be set/],
    [
      "a bad core option",
      insert({ maxBatchSize: 0 }),
      RangeError,
      /^maxBatchSize must be a positive integer/,
    ],
    [
      "a bad core option type",
      insert({ splitOnError: "yes" }),
      TypeError,
      /^splitOnError must be a boolean/,
    ],
  ])("refuses %s", (_, make, type, message) => {
    expect(make).toThrow(type);
    expect(make).toThrow(message);
    expect(pool.queries).toHaveLength(0);
  });

  it("takes a dotted string as one identifier, and { schema, name }", () => {
    expect(insert({ table: "app.events" })().table).toBe('"app.events"');
    expect(insert({ table: { schema: "app", name: "events" } })().table).toBe('"app"."events"');
    expect(insert({ table: { name: 'a"b' } })().table).toBe('"a""b"');
  });

  it("accepts a NUL-free 63-byte name and set naming target columns (a no-op upsert)", () => {
    expect(insert({ table: "é".repeat(31) })).not.toThrow();
    expect(insert({ onConflict: { target: ["a"], action: "update", set: ["a"] } })).not.toThrow();
  });

  it("names itself after its class, or the name option", () => {
    const batcher = insert({})();
    expect(batcher.name).toBe("PgInsertBatcher");
    expect(insert({ name: "events" })().name).toBe("events");
  });
});

describe("PgLoadBatcher options", () => {
  it.each([
    [
      "prepare that is not a boolean",
      load({ prepare: 1 }),
      TypeError,
      /^prepare must be a boolean/,
    ],
    ["no key", load({ key: undefined }), TypeError, /^key must/],
    ["a key with NUL", load({ key: "i\0d" }), TypeError, /^key must not contain a NUL/],
    [
      "neither table nor query",
      load({ table: undefined }),
      TypeError,
      /^table or query is required/,
    ],
    ["both table and query", load({ query: "SELECT 1" }), TypeError, /not both/],
    [
      "columns with query",
      load({ table: undefined, query: "SELECT 1", columns: ["a"] }),
      TypeError,
      /^columns goes with table/,
    ],
    ["an empty query", load({ table: undefined, query: " " }), TypeError, /^query must be SQL/],
    ["columns that are a string", load({ columns: "a" }), TypeError, /^columns must be "\*"/],
    ["empty columns", load({ columns: [] }), TypeError, /^columns must name at least one/],
    [
      "onMissingResult",
      load({ onMissingResult: "undefined" }),
      TypeError,
      /^onMissingResult cannot be set/,
    ],
    ["a bad core option", load({ concurrency: -1 }), RangeError, /^concurrency must be/],
  ])("refuses %s", (_, make, type, message) => {
    expect(make).toThrow(type);
    expect(make).toThrow(message);
  });
});
