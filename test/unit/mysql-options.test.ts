/**
 * What the `async-batcher/mysql` batchers refuse at construction: a `TypeError` or `RangeError`
 * naming the option, before any statement is sent. And the defaults and caps they put in the core
 * options.
 */

import { MysqlInsertBatcher, MysqlLoadBatcher } from "async-batcher/mysql";
import { describe, expect, it } from "vitest";
import { FakeMysqlPool } from "../helpers/fake-mysql.js";

const pool = new FakeMysqlPool();
const insert = (over: Record<string, unknown>) => () =>
  new MysqlInsertBatcher({ pool, table: "t", columns: ["a", "b"], ...over } as never);
const load = (over: Record<string, unknown>) => () =>
  new MysqlLoadBatcher({ pool, table: "t", key: "id", ...over } as never);

describe("MysqlInsertBatcher options", () => {
  it.each([
    ["no options", () => new MysqlInsertBatcher(undefined as never), TypeError, /^options/],
    ["no pool", insert({ pool: undefined }), TypeError, /^pool must/],
    ["a pool without getConnection()", insert({ pool: { query() {} } }), TypeError, /^pool must/],
    ["no table", insert({ table: undefined }), TypeError, /^table must/],
    ["an empty table name", insert({ table: "" }), TypeError, /^table must/],
    ["a table name with NUL", insert({ table: "t\0" }), TypeError, /^table must not contain a NUL/],
    ["a table name with an emoji", insert({ table: "t😀" }), TypeError, /^table must not contain/],
    [
      "a table name over 64",
      insert({ table: "t".repeat(65) }),
      RangeError,
      /^table must be at most/,
    ],
    ["a table object without name", insert({ table: { schema: "s" } }), TypeError, /^table\.name/],
    [
      "a schema with an emoji",
      insert({ table: { schema: "😀", name: "t" } }),
      TypeError,
      /^table\.schema/,
    ],
    ["a table array", insert({ table: ["s", "t"] }), TypeError, /^table must/],
    ["no columns", insert({ columns: undefined }), TypeError, /^columns must be an array/],
    ["empty columns", insert({ columns: [] }), TypeError, /^columns must name at least one/],
    ["a duplicate column", insert({ columns: ["a", "a"] }), TypeError, /^columns names "a" twice/],
    ["a column twice in two cases", insert({ columns: ["a", "A"] }), TypeError, /twice/],
    ["a non-string column", insert({ columns: ["a", 1] }), TypeError, /^columns\[1\]/],
    ["a column with an emoji", insert({ columns: ["a😀"] }), TypeError, /^columns\[0\] must not/],
    [
      "onDuplicateKeyUpdate false",
      insert({ onDuplicateKeyUpdate: false }),
      TypeError,
      /^onDuplicateKeyUpdate must be true/,
    ],
    [
      "empty onDuplicateKeyUpdate",
      insert({ onDuplicateKeyUpdate: [] }),
      TypeError,
      /^onDuplicateKeyUpdate must name at least one/,
    ],
    [
      "onDuplicateKeyUpdate of another column",
      insert({ onDuplicateKeyUpdate: ["c"] }),
      TypeError,
      /^onDuplicateKeyUpdate names "c", which is not one of columns/,
    ],
    ["ignore that is not a boolean", insert({ ignore: 1 }), TypeError, /^ignore must be a boolean/],
    [
      "keepPrepared that is not a boolean",
      insert({ keepPrepared: "yes" }),
      TypeError,
      /^keepPrepared must be a boolean/,
    ],
    [
      "a maxAllowedPacket string",
      insert({ maxAllowedPacket: "16M" }),
      TypeError,
      /^maxAllowedPacket must be a number/,
    ],
    [
      "a maxAllowedPacket below 1024",
      insert({ maxAllowedPacket: 1000 }),
      RangeError,
      /^maxAllowedPacket must be an integer from 1024/,
    ],
    ["keyOf", insert({ keyOf: (r: unknown) => r }), TypeError, /^keyOf cannot be set/],
    ["dedupe", insert({ dedupe: true }), TypeError, /^dedupe cannot be set/],
    ["weigh", insert({ weigh: () => 1 }), TypeError, /^weigh cannot be set/],
    ["executor", insert({ executor: {} }), TypeError, /^executor cannot be set/],
    ["a bad core option", insert({ maxBatchSize: 0 }), RangeError, /^maxBatchSize must be/],
    ["a bad maxBatchWeight", insert({ maxBatchWeight: -1 }), RangeError, /^maxBatchWeight must be/],
  ])("refuses %s", (_, make, type, message) => {
    expect(make).toThrow(type);
    expect(make).toThrow(message);
  });

  it("sends nothing at construction", () => {
    const fresh = new FakeMysqlPool();
    new MysqlInsertBatcher({ pool: fresh, table: "t", columns: ["a"] });
    expect(fresh.acquired).toBe(0);
  });

  it("names the batcher and exposes the quoted table and the columns", () => {
    const batcher = insert({ table: { schema: "s`", name: "t" } })();
    expect(batcher.name).toBe("MysqlInsertBatcher");
    expect(batcher.table).toBe("`s```.`t`");
    expect(batcher.columns).toEqual(["a", "b"]);
  });

  it("defaults to 250 rows, no wait (maxQueueTime 0), 4 statements at once (or the pool's connectionLimit), splitOnError", async () => {
    const small = new FakeMysqlPool();
    small.pool.config.connectionLimit = 2;
    const batcher = new MysqlInsertBatcher({ pool: small, table: "t", columns: ["a"] });
    // Observed through batches: 600 rows queued at once are cut into 250 + 250 + 100.
    const sizes: number[] = [];
    batcher.on("batchStart", (e) => sizes.push(e.size));
    await Promise.all(Array.from({ length: 600 }, (_, i) => batcher.process({ a: i })));
    expect(sizes).toEqual([250, 250, 100]);
    const stats = batcher.stats();
    expect(stats.batches.size + stats.batches.time).toBe(3);
  });

  it("caps maxBatchSize at 65,535 placeholders ÷ columns, at construction and in setOptions()", async () => {
    const columns = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const fresh = new FakeMysqlPool();
    const batcher = new MysqlInsertBatcher({
      pool: fresh,
      table: "t",
      columns,
      maxBatchSize: 5000,
      maxQueueTime: 0,
    });
    const sizes: number[] = [];
    batcher.on("batchStart", (e) => sizes.push(e.size));
    await Promise.all(Array.from({ length: 700 }, () => batcher.process({ c0: 1 })));
    expect(sizes).toEqual([655, 45]);
    batcher.setOptions({ maxBatchSize: 10_000 });
    sizes.length = 0;
    await Promise.all(Array.from({ length: 700 }, () => batcher.process({ c0: 1 })));
    expect(sizes).toEqual([655, 45]);
    for (const { values } of fresh.statements) expect(values.length).toBeLessThanOrEqual(65_535);
  });

  it("setOptions() with undefined goes back to this batcher's defaults, not the core's", async () => {
    const batcher = insert({ maxBatchSize: 10, maxQueueTime: 0 })();
    batcher.setOptions({ maxBatchSize: undefined });
    const sizes: number[] = [];
    batcher.on("batchStart", (e) => sizes.push(e.size));
    await Promise.all(Array.from({ length: 300 }, (_, i) => batcher.process({ a: i })));
    expect(sizes).toEqual([250, 50]);
  });

  it("setOptions() still checks values", () => {
    const batcher = insert({})();
    expect(() => batcher.setOptions({ maxBatchSize: 0 })).toThrow(RangeError);
    expect(() => batcher.setOptions({ maxBatchWeight: "x" as never })).toThrow(TypeError);
  });
});

describe("MysqlLoadBatcher options", () => {
  it.each([
    ["no options", () => new MysqlLoadBatcher(undefined as never), TypeError, /^options/],
    ["no pool", load({ pool: 1 }), TypeError, /^pool must/],
    ["no table", load({ table: undefined }), TypeError, /^table must/],
    ["no key", load({ key: undefined }), TypeError, /^key must be a non-empty string/],
    ["a key with NUL", load({ key: "i\0d" }), TypeError, /^key must not contain a NUL/],
    ["columns that is a string", load({ columns: "a" }), TypeError, /^columns must be "\*"/],
    ["empty columns", load({ columns: [] }), TypeError, /^columns must name at least one/],
    ["keyOf", load({ keyOf: (k: unknown) => k }), TypeError, /^keyOf cannot be set/],
    ["dedupe", load({ dedupe: false }), TypeError, /^dedupe cannot be set/],
    [
      "onMissingResult",
      load({ onMissingResult: "reject" }),
      TypeError,
      /^onMissingResult cannot be set/,
    ],
    ["a bad core option", load({ concurrency: -1 }), RangeError, /^concurrency must be/],
  ])("refuses %s", (_, make, type, message) => {
    expect(make).toThrow(type);
    expect(make).toThrow(message);
  });

  it("caps maxBatchSize at 65,535 keys", async () => {
    const fresh = new FakeMysqlPool(() => []);
    const batcher = new MysqlLoadBatcher({
      pool: fresh,
      table: "t",
      key: "id",
      maxBatchSize: 100_000,
      maxQueueTime: 0,
      maxAllowedPacket: 64 * 1024 * 1024,
    });
    const sizes: number[] = [];
    batcher.on("batchStart", (e) => sizes.push(e.size));
    await Promise.all(Array.from({ length: 70_000 }, (_, i) => batcher.process(i)));
    expect(sizes).toEqual([65_535, 4465]);
  });
});

describe("maxQueueTime defaults to 0", () => {
  it("a lone row goes at the end of its tick, without waiting for a timer", async () => {
    const fresh = new FakeMysqlPool();
    const batcher = new MysqlInsertBatcher({ pool: fresh, table: "t", columns: ["a"] });
    const reasons: string[] = [];
    batcher.on("batchStart", (e) => reasons.push(e.reason));
    const done = batcher.process({ a: 1 });
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(reasons).toEqual(["time"]);
    await done;
    await batcher.stop();
  });
});
