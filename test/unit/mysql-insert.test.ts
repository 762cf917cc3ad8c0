/**
 * `MysqlInsertBatcher` against a fake pool: one statement per batch, values as parameters, the
 * caller's own insertId (and when there is none), failure isolation, packet splitting, prepared
 * statements closed, connections released, the pool never ended.
 */

import { ItemTooLargeError } from "async-batcher";
import {
  InvalidInputError,
  MysqlInsertBatcher,
  type MysqlInsertBatcherOptions,
  type MysqlInsertResult,
} from "async-batcher/mysql";
import { describe, expect, it } from "vitest";
import { driverError, FakeMysqlPool, rowsOf } from "../helpers/fake-mysql.js";

type Row = Record<string, unknown>;

function make(pool: FakeMysqlPool, over: Partial<MysqlInsertBatcherOptions<Row>> = {}) {
  return new MysqlInsertBatcher<Row>({
    pool,
    table: "t",
    columns: ["id", "name", "n"],
    maxQueueTime: 0,
    ...over,
  });
}

const rows = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ name: `r${from + i}`, n: from + i }));

describe("one statement per batch", () => {
  it("inserts a batch with one INSERT, values in column order, missing fields as NULL", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool);
    await Promise.all([
      batcher.process({ name: "a", n: 1 }),
      batcher.process({ n: 2 }),
      batcher.process({ id: 9, name: "c", n: undefined }),
    ]);
    expect(pool.statements).toHaveLength(1);
    const [statement] = pool.statements;
    expect(statement?.sql).toBe(
      "INSERT INTO `t` (`id`, `name`, `n`) VALUES (?,?,?),(?,?,?),(?,?,?)",
    );
    expect(statement?.values).toEqual([null, "a", 1, null, null, 2, 9, "c", null]);
    await batcher.stop();
  });

  it("reads the server variables once, before the first batch", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { concurrency: 4, maxBatchSize: 10 });
    await Promise.all(rows(100).map((r) => batcher.process(r)));
    await Promise.all(rows(100).map((r) => batcher.process(r)));
    expect(pool.infoReads).toBe(1);
    expect(pool.statements).toHaveLength(20);
    const info = pool.executed.find((e) => e.sql.startsWith("SELECT @@max_allowed_packet"));
    expect(info?.values).toEqual([null, "t", "t", null, "t", "t"]);
  });

  it("reads them again after a failed read", async () => {
    const pool = new FakeMysqlPool();
    pool.infoError = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    const batcher = make(pool);
    const failed = await Promise.allSettled(rows(3).map((r) => batcher.process(r)));
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    // A connection error is not split: one read for the whole batch.
    expect(pool.infoReads).toBe(1);
    pool.infoError = undefined;
    await expect(batcher.process({ name: "x" })).resolves.toMatchObject({ insertId: 1 });
    expect(pool.infoReads).toBe(2);
  });

  it("releases every connection and never ends the pool", async () => {
    const pool: FakeMysqlPool = new FakeMysqlPool((sql, values) => {
      if (values.includes("bad")) throw driverError(1062, "ER_DUP_ENTRY", "23000");
      return pool.insertOk(sql, values);
    });
    const batcher = make(pool);
    await Promise.allSettled([...rows(10), { name: "bad" }].map((r) => batcher.process(r)));
    await batcher.stop();
    expect(pool.released).toBe(pool.acquired);
    expect(pool.ended).toBe(false);
  });

  it("runs at most `concurrency` statements at once: 4, or the pool's connectionLimit", async () => {
    for (const [limit, expected] of [
      [10, 4],
      [2, 2],
    ] as const) {
      let running = 0;
      let most = 0;
      const pool: FakeMysqlPool = new FakeMysqlPool(async (sql, values) => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return pool.insertOk(sql, values);
      });
      pool.pool.config.connectionLimit = limit;
      const batcher = make(pool, { maxBatchSize: 5 });
      await Promise.all(rows(50).map((r) => batcher.process(r)));
      expect(most).toBe(expected);
    }
  });
});

describe("validation, before any statement", () => {
  it.each([
    ["a field that is not a column", { name: "a", extra: 1 }, "column"],
    ["a column in another case", { Name: "a" }, "column"],
    ["a string", "row", "type"],
    ["null", null, "type"],
    ["an array", ["a", 1], "type"],
    ["a Date", new Date(), "type"],
    ["a function value", { name: () => "a" }, "type"],
    ["an invalid Date value", { name: new Date(Number.NaN) }, "value"],
  ])("%s rejects that caller alone with InvalidInputError", async (_, row, reason) => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool);
    const results = await Promise.allSettled([
      batcher.process({ name: "ok" }),
      batcher.process(row as Row),
    ]);
    expect(results[0]?.status).toBe("fulfilled");
    const error = (results[1] as PromiseRejectedResult).reason;
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.code).toBe("ERR_INVALID_INPUT");
    expect(error.reason).toBe(reason);
    expect(pool.statements).toHaveLength(1);
    expect(pool.statements[0]?.values).toHaveLength(3);
  });

  it("reads the values at process(): a later change to the object is not inserted", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxQueueTime: 50 });
    const row = { name: "before", n: { deep: 1 } };
    const done = batcher.process(row);
    row.name = "after";
    row.n.deep = 2;
    await batcher.flush();
    await done;
    expect(pool.statements[0]?.values).toEqual([null, "before", '{"deep":1}']);
  });

  it("sends bigints as exact decimal strings and class rows by their properties", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool);
    class Entity {
      name = "e";
      n = 2n ** 63n - 1n;
    }
    await batcher.process(new Entity() as unknown as Row);
    expect(pool.statements[0]?.values).toEqual([null, "e", "9223372036854775807"]);
  });

  it("gives batchKey the caller's row", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { batchKey: (row) => String(row.name).slice(0, 1) });
    await Promise.all(["a1", "b1", "a2"].map((name) => batcher.process({ name })));
    expect(pool.statements.map((s) => s.values.filter((v) => v !== null))).toEqual([
      ["a1", "a2"],
      ["b1"],
    ]);
  });
});

describe("insertId", () => {
  async function ids(
    pool: FakeMysqlPool,
    over: Partial<MysqlInsertBatcherOptions<Row>> = {},
    input: Row[] = rows(5),
  ) {
    const batcher = make(pool, over);
    const results = await Promise.all(input.map((r) => batcher.process(r)));
    return results.map((r) => r.insertId);
  }

  it("gives row i of a statement firstId + i with lock mode 1", async () => {
    const pool = new FakeMysqlPool();
    pool.nextId = 41;
    expect(await ids(pool)).toEqual([41, 42, 43, 44, 45]);
  });

  it("steps by auto_increment_increment, and works with lock mode 0", async () => {
    const pool = new FakeMysqlPool(() => ({ affectedRows: 5, insertId: 3, warningStatus: 0 }));
    pool.info.auto_increment_increment = 10;
    pool.info.autoinc_lock_mode = 0;
    expect(await ids(pool)).toEqual([3, 13, 23, 33, 43]);
  });

  it("each statement of a split batch has its own first id", async () => {
    const pool: FakeMysqlPool = new FakeMysqlPool((sql, values) => {
      if (values.includes("bad")) {
        pool.nextId += rowsOf(sql, values); // a failed statement still takes its ids
        throw driverError(1062, "ER_DUP_ENTRY", "23000");
      }
      return pool.insertOk(sql, values);
    });
    const batcher = make(pool);
    const input = [...rows(3), { name: "bad" }];
    const results = await Promise.allSettled(input.map((r) => batcher.process(r)));
    // [4 rows: ids 1-4 lost] → [r0, r1]: 5, 6; [r2, bad]: 7-8 lost → [r2]: 9; [bad] fails.
    expect(results.map((r) => (r.status === "fulfilled" ? r.value.insertId : "error"))).toEqual([
      5,
      6,
      9,
      "error",
    ]);
  });

  it.each([
    ["lock mode 2 (interleaved)", { autoinc_lock_mode: 2 }],
    ["a MyISAM table", { engine: "MyISAM" }],
    ["a table not found in information_schema", { engine: null }],
    ["no AUTO_INCREMENT column", { auto_column: null }],
  ])("is undefined with %s", async (_, info) => {
    const pool = new FakeMysqlPool();
    Object.assign(pool.info, info);
    expect(await ids(pool)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it.each([
    ["ignore", { ignore: true }],
    ["onDuplicateKeyUpdate", { onDuplicateKeyUpdate: true }],
  ] as const)("is undefined with %s", async (_, over) => {
    expect(await ids(new FakeMysqlPool(), over)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it("is undefined for a statement whose rows give the AUTO_INCREMENT column a value (even 0)", async () => {
    const pool = new FakeMysqlPool();
    pool.info.auto_column = "ID"; // column names compare case-insensitively
    const batcher = make(pool, { maxBatchSize: 2 });
    const results = await Promise.all(
      [{ name: "a" }, { id: 0, name: "b" }, { name: "c" }, { name: "d" }].map((r) =>
        batcher.process(r),
      ),
    );
    expect(results.map((r) => r.insertId)).toEqual([undefined, undefined, 3, 4]);
  });

  it("is undefined when the server's id is 0 or not a safe integer", async () => {
    const zero = new FakeMysqlPool(() => ({ affectedRows: 5, insertId: 0 }));
    expect(await ids(zero)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    const huge = new FakeMysqlPool(() => ({ affectedRows: 5, insertId: "18446744073709551000" }));
    expect(await ids(huge)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });
});

describe("affectedRows and the statement", () => {
  async function results(header: object, over: Partial<MysqlInsertBatcherOptions<Row>>, n = 3) {
    const pool = new FakeMysqlPool(() => header);
    const batcher = make(pool, over);
    return Promise.all(rows(n).map((r) => batcher.process(r)));
  }

  it("a plain INSERT: 1 per row, and the statement's counts shared", async () => {
    const out = await results({ affectedRows: 3, insertId: 7, warningStatus: 1 }, {});
    expect(out.map((r) => r.affectedRows)).toEqual([1, 1, 1]);
    expect(out[0]?.statement).toEqual({ rows: 3, affectedRows: 3, insertId: 7, warnings: 1 });
    expect(out[1]?.statement).toBe(out[0]?.statement);
  });

  it.each([
    [3, 1],
    [0, 0],
    [2, undefined],
  ])("ignore: %i of 3 rows affected gives %s per row", async (affected, share) => {
    const out = await results({ affectedRows: affected, insertId: 0 }, { ignore: true });
    expect(out.map((r) => r.affectedRows)).toEqual([share, share, share]);
  });

  it.each([
    [1, 2, 2],
    [3, 6, 2],
    [3, 4, undefined],
    [1, 0, 0],
  ])("onDuplicateKeyUpdate: %i rows, %i affected gives %s per row", async (n, affected, share) => {
    const out = await results(
      { affectedRows: affected, insertId: 0 },
      { onDuplicateKeyUpdate: ["n"] },
      n,
    );
    expect(out.map((r: MysqlInsertResult) => r.affectedRows)).toEqual(new Array(n).fill(share));
  });

  it("upsert and ignore SQL", async () => {
    const pool = new FakeMysqlPool();
    await make(pool, { onDuplicateKeyUpdate: ["name", "n"], ignore: true }).process({ name: "a" });
    expect(pool.statements[0]?.sql).toBe(
      "INSERT IGNORE INTO `t` (`id`, `name`, `n`) VALUES (?,?,?) ON DUPLICATE KEY UPDATE `name` = VALUES(`name`), `n` = VALUES(`n`)",
    );
  });
});

describe("failure isolation", () => {
  const bad = driverError(4025, "ER_CONSTRAINT_FAILED", "23000");

  it("one bad row among 1,000: that caller alone rejects with the driver's error", async () => {
    const inserted: unknown[] = [];
    const pool: FakeMysqlPool = new FakeMysqlPool((sql, values) => {
      if (values.includes("bad")) throw bad;
      for (let i = 1; i < values.length; i += 3) inserted.push(values[i]);
      return pool.insertOk(sql, values);
    });
    const batcher = make(pool);
    const input = rows(1000);
    input[567] = { name: "bad", n: 0 };
    const results = await Promise.allSettled(input.map((r) => batcher.process(r)));
    const rejected = results.flatMap((r, i) => (r.status === "rejected" ? [[i, r.reason]] : []));
    expect(rejected).toEqual([[567, bad]]);
    expect(inserted).toHaveLength(999);
    // About 2·log2(1000) statements more than one.
    expect(pool.statements.length).toBeLessThanOrEqual(1 + 2 * 10 + 1);
  });

  it("an error no row can cause rejects the whole batch at once, unsplit", async () => {
    const gone = driverError(1146, "ER_NO_SUCH_TABLE", "42S02");
    const pool = new FakeMysqlPool(() => {
      throw gone;
    });
    const batcher = make(pool);
    const results = await Promise.allSettled(rows(100).map((r) => batcher.process(r)));
    expect(results.every((r) => r.status === "rejected" && r.reason === gone)).toBe(true);
    expect(pool.statements).toHaveLength(1);
  });

  it("splitOnError: false rejects the whole batch with the error", async () => {
    const pool = new FakeMysqlPool((_, values) => {
      if (values.includes("bad")) throw bad;
      return { affectedRows: 1, insertId: 0 };
    });
    const batcher = make(pool, { splitOnError: false });
    const results = await Promise.allSettled(
      [...rows(3), { name: "bad" }].map((r) => batcher.process(r)),
    );
    expect(results.every((r) => r.status === "rejected" && r.reason === bad)).toBe(true);
    expect(pool.statements).toHaveLength(1);
  });
});

describe("max_allowed_packet", () => {
  const big = (i: number) => ({ name: "x".repeat(1000), n: i });

  it("keeps each statement under maxAllowedPacket; a row larger alone rejects with ItemTooLargeError", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxAllowedPacket: 8 * 1024 });
    const results = await Promise.allSettled([
      ...Array.from({ length: 30 }, (_, i) => batcher.process(big(i))),
      batcher.process({ name: "y".repeat(10_000) }),
    ]);
    expect(results.slice(0, 30).every((r) => r.status === "fulfilled")).toBe(true);
    expect((results[30] as PromiseRejectedResult).reason).toBeInstanceOf(ItemTooLargeError);
    // 8 KiB minus the statement's own bytes and 1 KiB of margin: 6 rows of ~1 KB per statement.
    expect(pool.statements.map((s) => s.values.length / 3)).toEqual([6, 6, 6, 6, 6]);
    for (const s of pool.statements) {
      const bytes = s.values.reduce<number>(
        (sum, v) => sum + (typeof v === "string" ? v.length : 8),
        0,
      );
      expect(bytes).toBeLessThan(8 * 1024);
    }
    expect(pool.infoReads).toBe(1); // for the ids only
  });

  it("learns the server's max_allowed_packet before the first statement", async () => {
    const pool = new FakeMysqlPool();
    pool.info.max_allowed_packet = 4096;
    const batcher = make(pool, { maxBatchSize: 100 });
    const splits: number[] = [];
    batcher.on("split", (e) => splits.push(e.size));
    // Cut before the server's value was known: split to fit, before any round trip.
    const first = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => batcher.process(big(i))),
    );
    expect(first.every((r) => r.status === "fulfilled")).toBe(true);
    expect(splits.length).toBeGreaterThan(0);
    for (const s of pool.statements) expect(s.values.length / 3).toBeLessThanOrEqual(2);
    // Later batches are cut to fit at once.
    splits.length = 0;
    const before = pool.statements.length;
    await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.process(big(i))));
    expect(splits).toEqual([]);
    expect(pool.statements.length - before).toBe(4);
    // And a row too large alone rejects before reaching the database.
    await expect(batcher.process({ name: "y".repeat(5000) })).rejects.toBeInstanceOf(
      ItemTooLargeError,
    );
  });

  it("does not refuse a row larger than 1 MiB before the server's limit is known", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool);
    await expect(batcher.process({ name: "x".repeat(2 * 1024 * 1024) })).resolves.toMatchObject({
      insertId: 1,
    });
  });

  it("never retries the split of a batch too large for the packet, whatever retry says", async () => {
    const pool = new FakeMysqlPool();
    pool.info.max_allowed_packet = 4096;
    const batcher = make(pool, { retry: { attempts: 3, delay: 1 } });
    const retries: unknown[] = [];
    batcher.on("retry", (e) => retries.push(e.error));
    await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.process(big(i))));
    expect(retries).toEqual([]);
    expect(pool.statements.length).toBe(4);
  });

  it("with splitOnError: false, a first batch too large for the packet rejects with a RangeError", async () => {
    const pool = new FakeMysqlPool();
    pool.info.max_allowed_packet = 4096;
    const batcher = make(pool, { splitOnError: false });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => batcher.process(big(i))),
    );
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(RangeError);
    expect(pool.statements).toEqual([]);
  });

  it("caps maxBatchWeight at what the packet leaves", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxAllowedPacket: 8 * 1024, maxBatchWeight: 1e9 });
    batcher.setOptions({ maxBatchWeight: 1e12 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => batcher.process(big(i))));
    expect(pool.statements.map((s) => s.values.length / 3)).toEqual([6, 6]);
  });
});

describe("prepared statements", () => {
  it("keeps the statements of a full batch and of batches of up to 8 rows open, and closes the others after use", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxBatchSize: 20, concurrency: 1 });
    await Promise.all(rows(50).map((r) => batcher.process(r)));
    await Promise.all(rows(40).map((r) => batcher.process(r)));
    await Promise.all(rows(3).map((r) => batcher.process(r)));
    await Promise.all(rows(3).map((r) => batcher.process(r)));
    const full = pool.statements[0]?.sql as string;
    const partial = pool.statements[2]?.sql as string;
    const small = pool.statements[5]?.sql as string;
    expect(pool.statements.map((s) => rowsOf(s.sql, s.values))).toEqual([20, 20, 10, 20, 20, 3, 3]);
    expect(pool.unprepared.map((u) => u.sql)).toEqual([
      expect.stringMatching(/^SELECT @@max_allowed_packet/),
      partial,
    ]);
    const open = [...pool.prepared.values()].flatMap((set) => [...set]);
    expect(open.sort()).toEqual([full, small].sort());
  });

  it("keepPrepared: false closes every statement", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxBatchSize: 4, keepPrepared: false });
    await Promise.all(rows(8).map((r) => batcher.process(r)));
    expect([...pool.prepared.values()].flatMap((set) => [...set])).toEqual([]);
  });

  it("closes the old full statement when maxBatchSize changes, and keeps the small ones", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxBatchSize: 20, concurrency: 1 });
    await Promise.all(rows(20).map((r) => batcher.process(r)));
    await Promise.all(rows(2).map((r) => batcher.process(r)));
    const [old, small] = pool.statements.map((s) => s.sql);
    batcher.setOptions({ maxBatchSize: 12 });
    await Promise.all(rows(12).map((r) => batcher.process(r)));
    expect(pool.unprepared.map((u) => u.sql)).toContain(old);
    expect(pool.unprepared.map((u) => u.sql)).not.toContain(small);
    const open = [...pool.prepared.values()].flatMap((set) => [...set]);
    expect(open.sort()).toEqual([small, pool.statements[2]?.sql].sort());
  });
});

describe("stop", () => {
  it("a graceful stop drains what is queued, and leaves the pool open", async () => {
    const pool = new FakeMysqlPool();
    const batcher = make(pool, { maxQueueTime: 1000 });
    const pending = rows(10).map((r) => batcher.process(r));
    await batcher.stop();
    await expect(Promise.all(pending)).resolves.toHaveLength(10);
    expect(pool.ended).toBe(false);
    await expect(batcher.process({ name: "late" })).rejects.toMatchObject({
      code: "ERR_BATCHER_STOPPED",
    });
  });
});
