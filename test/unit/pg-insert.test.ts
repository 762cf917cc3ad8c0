/**
 * `PgInsertBatcher` against a fake pool: per-caller validation, values as sent, returned rows
 * matched by position in SQL (whatever order the database answers in), the catalog read once and
 * again after a failure, which errors split and which do not, the VALUES form's parameter cap,
 * the defaults, and the pool left open.
 */
import { BatcherStoppedError } from "async-batcher";
import { InvalidInputError, PgInsertBatcher, type PgInsertBatcherOptions } from "async-batcher/pg";
import { describe, expect, it } from "vitest";
import { type FakeColumn, FakePool, type Handler, outcomes, pgError } from "../helpers/fake-pg.js";

const TABLE: FakeColumn[] = [
  { name: "id", type: "bigint", default_expr: "nextval('t_id_seq'::regclass)", pk_position: 0 },
  { name: "a", type: "integer" },
  { name: "b", type: "text" },
  { name: "j", type: "jsonb", is_json: true },
  { name: "tags", type: "integer[]", is_array: true },
];

function make(
  pool: FakePool,
  over: Partial<PgInsertBatcherOptions> = {},
): PgInsertBatcher<Record<string, unknown>, Record<string, unknown>> {
  return new PgInsertBatcher<Record<string, unknown>, Record<string, unknown>>({
    pool,
    table: "t",
    columns: ["a", "b", "j"],
    maxQueueTime: 0,
    ...over,
  });
}

/**
 * Answers a `returning` statement as PostgreSQL would, but in reverse order: each row is the
 * caller's `a` with a made-up id, its `__ord` and its key alias.
 */
const reversed: Handler = (_text, values) => {
  const as = values[0] as unknown[];
  const rows = as.map((a, i) => ({
    __ord: String(i + 1),
    id: String(100 + i),
    a,
    __key1: String(100 + i),
  }));
  return { rows: rows.reverse() };
};

describe("per-caller validation, before any batch", () => {
  it("rejects a row with a field that is not a column, a non-object row; the others are inserted", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool);
    const results = await outcomes([
      batcher.process({ a: 1 }),
      batcher.process({ a: 2, c: 3 }),
      batcher.process(null as never),
      batcher.process([1, 2] as never),
      batcher.process("row" as never),
      batcher.process({ a: 3, b: undefined }),
    ]);
    expect(results[0]).toBeUndefined();
    expect(results[5]).toBeUndefined();
    expect(results[1]).toBeInstanceOf(InvalidInputError);
    expect(results[1]).toMatchObject({ code: "ERR_INVALID_INPUT", reason: "column" });
    for (const i of [2, 3, 4]) expect(results[i]).toMatchObject({ reason: "type" });
    expect(pool.statements).toHaveLength(1);
    expect(pool.statements[0]?.values[0]).toEqual([1, 3]);
    await batcher.stop();
  });

  it("with returning and onConflict, rejects a row without a target value", async () => {
    const pool = new FakePool(TABLE, () => ({ rows: [] }));
    const batcher = make(pool, {
      returning: ["id"],
      onConflict: { target: ["a"], action: "nothing" },
    });
    const results = await outcomes([
      batcher.process({ b: "x" }),
      batcher.process({ a: null }),
      batcher.process({ a: 1 }),
    ]);
    expect(results[0]).toMatchObject({ reason: "value" });
    expect(results[1]).toMatchObject({ reason: "value" });
    expect(results[2]).toBeNull(); // nothing came back for it: skipped
    await batcher.stop();
  });
});

describe("values as sent", () => {
  it("a missing field is NULL; json values are JSON text, strings as they are", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool);
    await Promise.all([
      batcher.process({ a: 1, j: [1, 2] }),
      batcher.process({ b: "x", j: { k: "v" } }),
      batcher.process({ j: '{"raw":true}' }),
      batcher.process({ j: null }),
      batcher.process({ j: 5 }),
    ]);
    expect(pool.statements[0]?.values).toEqual([
      [1, null, null, null, null],
      [null, "x", null, null, null],
      ["[1,2]", '{"k":"v"}', '{"raw":true}', null, "5"],
    ]);
    await batcher.stop();
  });

  it("rejects alone an array in a scalar column (unnest would flatten it into rows)", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool);
    const results = await outcomes([batcher.process({ a: [1, 2] }), batcher.process({ a: 3 })]);
    expect(results[0]).toBeInstanceOf(InvalidInputError);
    expect(results[0]).toMatchObject({ reason: "type" });
    expect(results[1]).toBeUndefined();
    expect(pool.statements[0]?.values[0]).toEqual([3]);
    await batcher.stop();
  });

  it("rejects alone a json value JSON.stringify throws on (a bigint)", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool);
    const results = await outcomes([batcher.process({ j: { n: 1n } }), batcher.process({ a: 3 })]);
    expect(results[0]).toBeInstanceOf(TypeError);
    expect(results[1]).toBeUndefined();
    expect(pool.statements).toHaveLength(1);
    await batcher.stop();
  });

  it("sends no statement when every row of a batch was refused", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool);
    await expect(batcher.process({ a: [1] })).rejects.toBeInstanceOf(InvalidInputError);
    expect(pool.statements).toHaveLength(0);
    await batcher.stop();
  });
});

describe("returning", () => {
  it("gives each caller its own row, matched by position whatever the order, without the added columns", async () => {
    const pool = new FakePool(TABLE, reversed);
    const batcher = make(pool, { returning: ["id", "a"] });
    const rows = await Promise.all([1, 2, 3, 4].map((a) => batcher.process({ a })));
    expect(rows).toEqual([
      { id: "100", a: 1 },
      { id: "101", a: 2 },
      { id: "102", a: 3 },
      { id: "103", a: 4 },
    ]);
    expect(pool.statements).toHaveLength(1);
    await batcher.stop();
  });

  it("resolves null for a caller no row came back for", async () => {
    const pool = new FakePool(TABLE, (text, values) => {
      const { rows } = reversed(text, values) as { rows: Record<string, unknown>[] };
      return { rows: rows.filter((row) => row.a !== 2) };
    });
    const batcher = make(pool, { returning: ["id"] });
    const rows = await Promise.all([1, 2, 3].map((a) => batcher.process({ a })));
    expect(rows.map((row) => row?.a)).toEqual([1, undefined, 3]);
    expect(rows[1]).toBeNull();
    await batcher.stop();
  });

  it("rejects every caller with a TypeError when no key can match rows, and sends no INSERT", async () => {
    const pool = new FakePool([
      { name: "a", type: "integer" },
      { name: "b", type: "text" },
      { name: "j", type: "jsonb" },
    ]);
    const batcher = make(pool, { returning: "*" });
    const results = await outcomes([batcher.process({ a: 1 }), batcher.process({ a: 2 })]);
    for (const result of results) {
      expect(result).toBeInstanceOf(TypeError);
      expect((result as Error).message).toMatch(/^returning needs a way to match/);
    }
    expect(pool.statements).toHaveLength(0);
    await batcher.stop();
  });

  it("matches on the configured primary key, or on a composite one", async () => {
    const pool = new FakePool([
      { name: "a", type: "integer", pk_position: 1 },
      { name: "b", type: "text", pk_position: 0 },
      { name: "j", type: "jsonb" },
    ]);
    const batcher = make(pool, { returning: "*" });
    await batcher.process({ a: 1, b: "x" });
    expect(pool.statements[0]?.text).toContain(
      'RETURNING *, "b" AS "__key1", "a" AS "__key2") SELECT i.ord AS "__ord", ins.* FROM ins JOIN i ON i.c2 = ins."__key1" AND i.c1 = ins."__key2"',
    );
    await batcher.stop();
  });

  it("refuses returning columns and columns the table does not have, generated and ALWAYS identity columns", async () => {
    const table: FakeColumn[] = [
      ...TABLE,
      { name: "g", type: "integer", generated: "s" },
      { name: "ida", type: "integer", identity: "a", sequence: "s" },
    ];
    for (const [over, message] of [
      [{ returning: ["nope"] }, /^returning: table "t" has no column "nope"/],
      [{ columns: ["a", "zz"] }, /^columns: table "t" has no column "zz"/],
      [{ columns: ["a", "g"] }, /generated column/],
      [{ columns: ["a", "ida"] }, /GENERATED ALWAYS AS IDENTITY/],
    ] as const) {
      const pool = new FakePool(table);
      const batcher = make(pool, over as Partial<PgInsertBatcherOptions>);
      const error = await batcher.process({ a: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
      expect(pool.statements).toHaveLength(0);
      await batcher.stop();
    }
  });
});

describe("the catalog", () => {
  it("is read once, by concurrent first batches together", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool, { maxBatchSize: 2 });
    await Promise.all([1, 2, 3, 4, 5, 6].map((a) => batcher.process({ a })));
    await Promise.all([7, 8].map((a) => batcher.process({ a })));
    expect(pool.catalogReads).toBe(1);
    expect(pool.statements).toHaveLength(4);
    await batcher.stop();
  });

  it("failing, rejects that batch's callers with the driver's error, unsplit, and is read again next batch", async () => {
    const pool = new FakePool(TABLE);
    pool.catalogError = pgError("42P01", 'relation "t" does not exist');
    const batcher = make(pool);
    const results = await outcomes([1, 2, 3].map((a) => batcher.process({ a })));
    for (const result of results) expect(result).toBe(pool.catalogError);
    expect(pool.catalogReads).toBe(1);
    pool.catalogError = undefined;
    await batcher.process({ a: 4 });
    expect(pool.catalogReads).toBe(2);
    expect(pool.statements).toHaveLength(1);
    await batcher.stop();
  });

  it("is read again after a statement fails with a class 42 error (the table changed)", async () => {
    let fail = true;
    const pool = new FakePool(TABLE, () => {
      if (fail) throw pgError("42703", 'column "b" does not exist');
      return { rows: [] };
    });
    const batcher = make(pool);
    const results = await outcomes([1, 2].map((a) => batcher.process({ a })));
    // Not split: a statement-level error is the same for every half.
    expect(results.map((r) => (r as { code?: string }).code)).toEqual(["42703", "42703"]);
    expect(pool.statements).toHaveLength(1);
    fail = false;
    await batcher.process({ a: 3 });
    expect(pool.catalogReads).toBe(2);
    await batcher.stop();
  });
});

describe("failure isolation", () => {
  it("splits a statement that failed on a row: only that caller rejects, with the driver's error", async () => {
    const duplicate = pgError("23505", "duplicate key");
    const pool = new FakePool(TABLE, (_text, values) => {
      if ((values[0] as unknown[]).includes(13)) throw duplicate;
      return { rows: [] };
    });
    const batcher = make(pool);
    const as = Array.from({ length: 20 }, (_, i) => i);
    const results = await outcomes(as.map((a) => batcher.process({ a })));
    expect(results[13]).toBe(duplicate);
    expect(results.filter((r) => r === undefined)).toHaveLength(19);
    const inserted = pool.statements
      .filter((s) => !(s.values[0] as unknown[]).includes(13))
      .flatMap((s) => s.values[0] as number[]);
    expect(inserted.sort((x, y) => x - y)).toEqual(as.filter((a) => a !== 13));
    await batcher.stop();
  });

  it("does not split on a connection error (no SQLSTATE): every caller rejects with it, one statement", async () => {
    const dropped = new Error("Connection terminated unexpectedly");
    const pool = new FakePool(TABLE, () => {
      throw dropped;
    });
    const batcher = make(pool);
    const results = await outcomes([1, 2, 3, 4].map((a) => batcher.process({ a })));
    expect(results).toEqual([dropped, dropped, dropped, dropped]);
    expect(pool.statements).toHaveLength(1);
    await batcher.stop();
  });

  it.each(["08006", "53300", "57P01", "28000", "0A000"])(
    "does not split on SQLSTATE %s",
    async (code) => {
      const pool = new FakePool(TABLE, () => {
        throw pgError(code);
      });
      const batcher = make(pool);
      await outcomes([1, 2, 3, 4].map((a) => batcher.process({ a })));
      expect(pool.statements).toHaveLength(1);
      await batcher.stop();
    },
  );

  it("rejects the whole batch, unsplit, with splitOnError: false", async () => {
    const error = pgError("23514");
    const pool = new FakePool(TABLE, () => {
      throw error;
    });
    const batcher = make(pool, { splitOnError: false });
    expect(await outcomes([1, 2, 3].map((a) => batcher.process({ a })))).toEqual([
      error,
      error,
      error,
    ]);
    expect(pool.statements).toHaveLength(1);
    await batcher.stop();
  });
});

describe("the VALUES form (a column of an array type)", () => {
  /** 40 columns, one of them an array: at most floor(65,535 / 40) = 1,638 rows per statement. */
  const wide: FakeColumn[] = [
    { name: "tags", type: "integer[]", is_array: true },
    ...Array.from({ length: 39 }, (_, i) => ({ name: `c${i}`, type: "integer" })),
  ];
  const columns = wide.map((c) => c.name);

  it("sends arrays as parameters and lowers maxBatchSize to the parameter limit", async () => {
    const pool = new FakePool(wide);
    const sizes: number[] = [];
    const batcher = new PgInsertBatcher({
      pool,
      table: "w",
      columns,
      maxBatchSize: 5000,
      maxQueueTime: Number.POSITIVE_INFINITY,
      logger: (e) => {
        if (e.type === "batchCut") sizes.push(e.size);
      },
    });
    // Cut before the table is read: too big for one statement. splitOnError halves it before
    // anything is sent.
    let done = Promise.all(
      Array.from({ length: 2000 }, (_, i) => batcher.process({ tags: [i, i] })),
    );
    await batcher.flush();
    await done;
    expect(pool.statements.map((s) => s.values.length)).toEqual([40_000, 40_000]);
    expect(pool.statements[0]?.values.slice(0, 2)).toEqual([[0, 0], null]);
    expect(pool.statements[0]?.text).toMatch(
      /^INSERT INTO "w" \("tags", "c0", .*\(VALUES \(\$1::integer\[\], \$2::integer/,
    );
    // From now on, batches are cut at 1,638 rows.
    sizes.length = 0;
    done = Promise.all(Array.from({ length: 2000 }, () => batcher.process({ c0: 1 })));
    await batcher.flush();
    await done;
    expect(sizes).toEqual([1638, 362]);
    // setOptions cannot go over it either.
    batcher.setOptions({ maxBatchSize: 10_000 });
    sizes.length = 0;
    done = Promise.all(Array.from({ length: 2000 }, () => batcher.process({ c0: 1 })));
    await batcher.flush();
    await done;
    expect(sizes).toEqual([1638, 362]);
    await batcher.stop();
  });

  it("accepts arrays, nested ones too, in the array column; refuses them elsewhere", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool, { columns: ["a", "tags"] });
    const results = await outcomes([
      batcher.process({ tags: [1, 2] }),
      batcher.process({ tags: [[1], [2]] }),
      batcher.process({ a: [1] }),
    ]);
    expect(results.slice(0, 2)).toEqual([undefined, undefined]);
    expect(results[2]).toMatchObject({ reason: "type" });
    expect(pool.statements[0]?.values).toEqual([null, [1, 2], null, [[1], [2]]]);
    await batcher.stop();
  });
});

describe("defaults, setOptions, stop", () => {
  it("cuts batches of 250 rows by default, and again after setOptions({ maxBatchSize: undefined })", async () => {
    const pool = new FakePool(TABLE);
    const sizes: number[] = [];
    const batcher = make(pool, {
      maxQueueTime: Number.POSITIVE_INFINITY,
      logger: (e) => {
        if (e.type === "batchCut") sizes.push(e.size);
      },
    });
    let done = Promise.all(Array.from({ length: 600 }, () => batcher.process({ a: 1 })));
    await batcher.flush();
    await done;
    expect(sizes).toEqual([250, 250, 100]);
    batcher.setOptions({ maxBatchSize: 10 });
    batcher.setOptions({ maxBatchSize: undefined });
    sizes.length = 0;
    done = Promise.all(Array.from({ length: 300 }, () => batcher.process({ a: 1 })));
    await batcher.flush();
    await done;
    expect(sizes).toEqual([250, 50]);
    await batcher.stop();
  });

  it("runs at most 4 statements at once, or the pool's size when smaller", async () => {
    for (const [max, expected] of [
      [undefined, 4],
      [2, 2],
      [10, 4],
    ] as const) {
      let running = 0;
      let most = 0;
      const pool = new FakePool(TABLE, async () => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        return { rows: [] };
      });
      if (max !== undefined) pool.options.max = max;
      const batcher = make(pool, { maxBatchSize: 1 });
      await Promise.all(Array.from({ length: 12 }, (_, a) => batcher.process({ a })));
      expect(most).toBe(expected);
      await batcher.stop();
    }
  });

  it("drains on stop() and never ends the pool", async () => {
    const pool = new FakePool(TABLE);
    const batcher = make(pool, { maxQueueTime: Number.POSITIVE_INFINITY });
    const pending = Array.from({ length: 5 }, (_, a) => batcher.process({ a }));
    await batcher.stop();
    expect(await outcomes(pending)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(pool.statements).toHaveLength(1);
    expect(pool.ended).toBe(false);
    await expect(batcher.process({ a: 1 })).rejects.toBeInstanceOf(BatcherStoppedError);
  });
});

describe("maxQueueTime defaults to 0", () => {
  it("a lone row goes at the end of its tick, without waiting for a timer", async () => {
    const pool = new FakePool(TABLE);
    const batcher = new PgInsertBatcher({ pool, table: "t", columns: ["a", "b"] });
    const reasons: string[] = [];
    batcher.on("batchStart", (e) => reasons.push(e.reason));
    const done = batcher.process({ a: 1, b: "x" });
    // The table is read first (a promise), then the statement: no timer in between.
    await done;
    expect(reasons).toEqual(["time"]);
    expect(pool.statements).toHaveLength(1);
    await batcher.stop();
  });
});
