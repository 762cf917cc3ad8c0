/**
 * `PgLoadBatcher` against a fake pool: one query per batch with each distinct key once, rows
 * matched to callers by position (table) or by `String(key)` (query), `null` for a key without a
 * row, a `RangeError` for a key with several, and failures as for inserts.
 */
import { InvalidInputError, PgLoadBatcher } from "async-batcher/pg";
import { describe, expect, it } from "vitest";
import { keyString } from "../../src/integrations/pg/load.js";
import { type FakeColumn, FakePool, outcomes, pgError } from "../helpers/fake-pg.js";

const TABLE: FakeColumn[] = [
  { name: "id", type: "bigint", pk_position: 0 },
  { name: "name", type: "text" },
];

/** Rows for the positions in `found`, in reverse order, as the table form's query returns them. */
const byPosition = (found: (keys: unknown[]) => number[]) => (_text: string, values: unknown[]) => {
  const keys = values[0] as unknown[];
  const rows = found(keys).map((i) => ({
    __ord: String(i + 1),
    id: String(keys[i]),
    name: `n${String(keys[i])}`,
  }));
  return { rows: rows.reverse() };
};

describe("the table form", () => {
  it("loads a batch with one query, each distinct key once, and matches rows by position", async () => {
    const pool = new FakePool(
      TABLE,
      byPosition((keys) => keys.map((_, i) => i).filter((i) => keys[i] !== 3)),
    );
    const batcher = new PgLoadBatcher<number | string | bigint>({
      pool,
      table: "t",
      key: "id",
      maxQueueTime: 0,
    });
    const rows = await Promise.all([1, 2, 1, 3, 2n, "2"].map((k) => batcher.process(k)));
    expect(rows).toEqual([
      { id: "1", name: "n1" },
      { id: "2", name: "n2" },
      { id: "1", name: "n1" },
      null,
      { id: "2", name: "n2" },
      { id: "2", name: "n2" },
    ]);
    // 2, 2n and "2" are the same parameter: fetched once.
    expect(pool.statements.map((s) => s.values)).toEqual([[[1, 2, 3]]]);
    await batcher.stop();
  });

  it("rejects, alone, a key that found several rows", async () => {
    const pool = new FakePool(
      TABLE,
      byPosition((keys) => [...keys.map((_, i) => i), 0]),
    );
    const batcher = new PgLoadBatcher({ pool, table: "t", key: "id", maxQueueTime: 0 });
    const results = await outcomes([batcher.process(1), batcher.process(2)]);
    expect(results[0]).toBeInstanceOf(RangeError);
    expect((results[0] as Error).message).toMatch(/^key 1 found 2 rows/);
    expect(results[1]).toEqual({ id: "2", name: "n2" });
    await batcher.stop();
  });

  it("selects the columns asked for, and checks them and the key against the table", async () => {
    const pool = new FakePool(TABLE, () => ({ rows: [] }));
    const batcher = new PgLoadBatcher({
      pool,
      table: "t",
      key: "id",
      columns: ["name"],
      maxQueueTime: 0,
    });
    await batcher.process(1);
    expect(pool.statements[0]?.text).toMatch(
      /^WITH found AS MATERIALIZED \(SELECT \* FROM "t" WHERE "id" = ANY\(\$1::bigint\[\]\)\) SELECT k\.ord AS "__ord", t\."name" FROM/,
    );
    await batcher.stop();
    for (const [over, message] of [
      [{ key: "nope" }, /^key: table "t" has no column "nope"/],
      [{ key: "id", columns: ["zz"] }, /^columns: table "t" has no column "zz"/],
    ] as const) {
      const other = new FakePool([...TABLE, { name: "arr", type: "integer[]", is_array: true }]);
      const bad = new PgLoadBatcher({ pool: other, table: "t", maxQueueTime: 0, ...over });
      const error = await bad.process(1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
      await bad.stop();
    }
    const arrays = new FakePool([...TABLE, { name: "arr", type: "integer[]", is_array: true }]);
    const byArray = new PgLoadBatcher({ pool: arrays, table: "t", key: "arr", maxQueueTime: 0 });
    await expect(byArray.process(1)).rejects.toThrow(/array keys are not supported/);
    await byArray.stop();
  });

  it("rejects null, undefined and array keys alone, before any query", async () => {
    const pool = new FakePool(TABLE, () => ({ rows: [] }));
    const batcher = new PgLoadBatcher<unknown>({ pool, table: "t", key: "id", maxQueueTime: 0 });
    const results = await outcomes([
      batcher.process(null),
      batcher.process(undefined),
      batcher.process([1]),
      batcher.process(5),
    ]);
    for (const r of results.slice(0, 3)) {
      expect(r).toBeInstanceOf(InvalidInputError);
      expect(r).toMatchObject({ reason: "type" });
    }
    expect(results[3]).toBeNull();
    expect(pool.statements.map((s) => s.values)).toEqual([[[5]]]);
    await batcher.stop();
  });

  it("splits on a bad key value and does not split on a connection error", async () => {
    const bad = pgError("22P02", "invalid input syntax for type bigint");
    const pool = new FakePool(TABLE, (_t, values) => {
      if ((values[0] as unknown[]).includes("x")) throw bad;
      return { rows: [] };
    });
    const batcher = new PgLoadBatcher<unknown>({ pool, table: "t", key: "id", maxQueueTime: 0 });
    const results = await outcomes([1, "x", 3, 4].map((k) => batcher.process(k)));
    expect(results).toEqual([null, bad, null, null]);
    await batcher.stop();

    const dropped = new Error("Connection terminated");
    const down = new FakePool(TABLE, () => {
      throw dropped;
    });
    const other = new PgLoadBatcher({ pool: down, table: "t", key: "id", maxQueueTime: 0 });
    expect(await outcomes([1, 2, 3].map((k) => other.process(k)))).toEqual([
      dropped,
      dropped,
      dropped,
    ]);
    expect(down.statements).toHaveLength(1);
    await other.stop();
  });
});

describe("the query form", () => {
  const QUERY = "SELECT id, name FROM t WHERE id = ANY($1::int8[])";

  it("sends the query as is with the distinct keys, and matches rows by String(key)", async () => {
    const pool = new FakePool([], (_text, values) => ({
      rows: (values[0] as unknown[])
        .filter((k) => String(k) !== "9")
        .map((k) => ({ id: String(k), name: `n${String(k)}` }))
        .reverse(),
      fields: [{ name: "id" }, { name: "name" }],
    }));
    const batcher = new PgLoadBatcher<number | bigint | string>({
      pool,
      query: QUERY,
      key: "id",
      maxQueueTime: 0,
    });
    const rows = await Promise.all([1, 2n, "1", 9].map((k) => batcher.process(k)));
    expect(rows).toEqual([
      { id: "1", name: "n1" },
      { id: "2", name: "n2" },
      { id: "1", name: "n1" },
      null,
    ]);
    expect(pool.queries).toEqual([
      {
        text: QUERY,
        values: [[1, 2n, 9]],
        name: expect.stringMatching(/^async_batcher_[0-9a-f]{40}_0$/),
      },
    ]);
    expect(pool.catalogReads).toBe(0);
    await batcher.stop();
  });

  it("rejects every caller when the result has no key column", async () => {
    const pool = new FakePool([], () => ({ rows: [{ other: 1 }], fields: [{ name: "other" }] }));
    const batcher = new PgLoadBatcher({ pool, query: QUERY, key: "id", maxQueueTime: 0 });
    const results = await outcomes([batcher.process(1), batcher.process(2)]);
    for (const r of results) {
      expect(r).toBeInstanceOf(TypeError);
      expect((r as Error).message).toMatch(/^query returned no "id" column/);
    }
    await batcher.stop();
  });

  it("rejects a key that found several rows", async () => {
    const pool = new FakePool([], () => ({ rows: [{ id: 1 }, { id: 1 }, { id: 2 }] }));
    const batcher = new PgLoadBatcher({ pool, query: QUERY, key: "id", maxQueueTime: 0 });
    const results = await outcomes([batcher.process(1), batcher.process(2)]);
    expect(results[0]).toBeInstanceOf(RangeError);
    expect(results[1]).toEqual({ id: 2 });
    await batcher.stop();
  });
});

describe("keyString", () => {
  it.each([
    ["abc", "abc"],
    [12, "12"],
    [12n, "12"],
    [true, "true"],
    [new Date("2024-01-02T03:04:05.678Z"), "2024-01-02T03:04:05.678Z"],
    [new Date(Number.NaN), "Invalid Date"],
    [new Uint8Array([0, 1, 255]), "\\x0001ff"],
    [{ a: 1 }, '{"a":1}'],
  ])("%s → %s", (key, expected) => {
    expect(keyString(key)).toBe(expected);
  });
});

describe("defaults", () => {
  it("loads at most 250 distinct keys per query, with no wait", async () => {
    const pool = new FakePool(
      TABLE,
      byPosition(() => []),
    );
    const batcher = new PgLoadBatcher<number>({ pool, table: "t", key: "id" });
    const sizes: number[] = [];
    batcher.on("batchStart", (e) => sizes.push(e.size));
    await Promise.all(Array.from({ length: 600 }, (_, i) => batcher.process(i)));
    expect(sizes).toEqual([250, 250, 100]);
    await batcher.stop();
  });
});
