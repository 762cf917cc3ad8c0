/**
 * `MysqlLoadBatcher` against a fake pool: one query per batch, rows matched to callers by the
 * position the server joined them to (never by comparing keys in JavaScript), duplicates fetched
 * once, missing keys `null`, a key with several rows rejected.
 */
import { InvalidInputError, MysqlLoadBatcher, type MysqlValue } from "async-batcher/mysql";
import { describe, expect, it } from "vitest";
import { FakeMysqlPool } from "../helpers/fake-mysql.js";

type Row = Record<string, unknown>;

/**
 * A fake server for the load query: `match(key, row)` says which rows a key finds (as the
 * server's `=` would); rows come back as mysql2 gives them with nestTables, in any order.
 */
function server(table: Row[], match: (key: MysqlValue, row: Row) => boolean) {
  return (_sql: string, keys: MysqlValue[]) => {
    const out: { k: { o: number }; t: Row }[] = [];
    keys.forEach((key, o) => {
      // NULL = anything is unknown: a NULL key (the padding) finds no row.
      if (key === null) return;
      for (const row of table) if (match(key, row)) out.push({ k: { o }, t: { ...row } });
    });
    return out.reverse();
  };
}

const users = [
  { id: 1, name: "Abc" },
  { id: 2, name: "x" },
  { id: 3, name: "dup" },
  { id: 4, name: "dup" },
];
const byName = server(
  users,
  (key, row) => String(key).toLowerCase() === String(row.name).toLowerCase(),
);

function make(pool: FakeMysqlPool, over: Record<string, unknown> = {}) {
  return new MysqlLoadBatcher<unknown, Row>({
    pool,
    table: "users",
    key: "name",
    maxQueueTime: 0,
    ...over,
  });
}

describe("MysqlLoadBatcher", () => {
  it("loads a batch with one query and gives each caller the row the server matched to its key", async () => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool);
    const got = await Promise.all(["abc", "X", "none", "ABC"].map((k) => batcher.process(k)));
    expect(got).toEqual([users[0], users[1], null, users[0]]);
    expect(pool.statements).toHaveLength(1);
    expect(pool.statements[0]?.sql).toBe(
      "SELECT `k`.`o`, `t`.* FROM (SELECT ? AS `k`, 0 AS `o` UNION ALL SELECT ?, 1 UNION ALL SELECT ?, 2 UNION ALL SELECT ?, 3) AS `k` JOIN `users` AS `t` ON `t`.`name` = `k`.`k`",
    );
    expect(pool.statements[0]?.statement).toMatchObject({ nestTables: true, rowsAsArray: false });
  });

  it("fetches a key asked for twice in a batch once; 42, 42n and '42' are three keys", async () => {
    const pool = new FakeMysqlPool(server([{ id: 42 }], (key, row) => Number(key) === row.id));
    const batcher = make(pool, { key: "id" });
    const got = await Promise.all(
      [42, "42", 42, 42n, Buffer.from("a"), Buffer.from("a")].map((k) => batcher.process(k)),
    );
    expect(got.slice(0, 4)).toEqual([{ id: 42 }, { id: 42 }, { id: 42 }, { id: 42 }]);
    expect(pool.statements[0]?.values).toEqual([42, "42", "42", Buffer.from("a")]);
  });

  it("rejects a key that finds several rows with a RangeError, alone", async () => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool);
    const [dup, ok] = await Promise.allSettled([batcher.process("dup"), batcher.process("x")]);
    expect((dup as PromiseRejectedResult).reason).toBeInstanceOf(RangeError);
    expect((ok as PromiseFulfilledResult<Row>).value).toEqual(users[1]);
  });

  it("selects the listed columns", async () => {
    const pool = new FakeMysqlPool(() => []);
    await make(pool, { columns: ["id"] }).process("a");
    expect(pool.statements[0]?.sql).toMatch(/^SELECT `k`\.`o`, `t`\.`id` FROM/);
  });

  it.each([
    ["null", null, "type"],
    ["undefined", undefined, "type"],
    ["an object", { id: 1 }, "type"],
    ["NaN", Number.NaN, "value"],
    ["an invalid Date", new Date(Number.NaN), "value"],
  ])("refuses %s as a key, alone, with InvalidInputError", async (_, key, reason) => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool);
    const [bad, ok] = await Promise.allSettled([batcher.process(key), batcher.process("x")]);
    const error = (bad as PromiseRejectedResult).reason;
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.reason).toBe(reason);
    expect(ok.status).toBe("fulfilled");
  });

  it("keeps each query under maxAllowedPacket", async () => {
    const pool = new FakeMysqlPool(() => []);
    const batcher = make(pool, { maxAllowedPacket: 4096 });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => batcher.process(`${i}`.padEnd(500, "x"))),
    );
    const keys = pool.statements.map((s) => s.values.filter((v) => v !== null).length);
    expect(keys.reduce((a, b) => a + b, 0)).toBe(20);
    for (const n of keys) expect(n).toBeLessThanOrEqual(5);
    // Padding (27 bytes a NULL key) is added only where it fits: 5 keys of ~527 bytes and 3
    // NULLs make 2,716 bytes, under 4,096 less the statement.
    for (const s of pool.statements) expect(s.values.length).toBe(8);
    expect(pool.infoReads).toBe(0);
  });

  it("pads a batch with NULL keys to the next power of two (or maxBatchSize), whose statement stays prepared", async () => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool, { maxBatchSize: 12 });
    const load = (keys: string[]) => Promise.all(keys.map((k) => batcher.process(k)));
    expect(await load(["abc", "x", "none"])).toEqual([users[0], users[1], null]);
    expect(await load(["x", "abc", "q"])).toEqual([users[1], users[0], null]);
    expect(await load(["x", "a", "b", "c", "d"])).toEqual([users[1], null, null, null, null]);
    expect(await load("abcdefghi".split(""))).toEqual(Array(9).fill(null));
    expect(await load(["x"])).toEqual([users[1]]);
    expect(pool.statements.map((s) => s.values)).toEqual([
      ["abc", "x", "none", null],
      ["x", "abc", "q", null],
      ["x", "a", "b", "c", "d", null, null, null],
      [..."abcdefghi", null, null, null],
      ["x"],
    ]);
    // One statement per size (4, 8, 12 = maxBatchSize, 1), each prepared once and kept.
    const sizes = pool.statements.map((s) => s.sql.split("?").length - 1);
    expect(sizes).toEqual([4, 4, 8, 12, 1]);
    expect(pool.unprepared.filter((u) => !u.sql.startsWith("SELECT @@"))).toEqual([]);
    expect(new Set(pool.statements.map((s) => s.statement)).size).toBe(4);
  });

  it("keepPrepared: false pads nothing and closes every statement", async () => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool, { keepPrepared: false });
    expect(await Promise.all(["abc", "x", "none"].map((k) => batcher.process(k)))).toEqual([
      users[0],
      users[1],
      null,
    ]);
    expect(pool.statements.map((s) => s.values)).toEqual([["abc", "x", "none"]]);
    expect(pool.unprepared.map((u) => u.sql)).toContain(pool.statements[0]?.sql);
  });

  it("closes the statements of sizes no longer used when maxBatchSize changes, and reuses them when it comes back", async () => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool, { maxBatchSize: 6, maxAllowedPacket: 1 << 20 });
    const load = (n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => batcher.process(`k${i}`)));
    await load(6); // the statement of 6 keys (maxBatchSize)
    await load(3); // of 4 (a power of two)
    const [six, four] = pool.statements.map((s) => s.sql);
    batcher.setOptions({ maxBatchSize: 3 });
    await load(3); // of 3: the new maxBatchSize
    // 6 is no batch size any more, and 4 is above the new maxBatchSize: both closed.
    expect(pool.unprepared.map((u) => u.sql).sort()).toEqual([four, six].sort());
    const three = pool.statements.at(-1)?.sql;
    batcher.setOptions({ maxBatchSize: 6 });
    await load(6);
    await load(6);
    expect(pool.statements.at(-1)?.sql).toBe(six);
    // 3 is no batch size any more; 6 is prepared again and kept: not closed again.
    expect(pool.unprepared.map((u) => u.sql)).toEqual([
      ...pool.unprepared.slice(0, 2).map((u) => u.sql),
      three,
    ]);
  });

  it("reads max_allowed_packet from the server once, without a table", async () => {
    const pool = new FakeMysqlPool(() => []);
    const batcher = make(pool);
    await Promise.all([1, 2, 3].map((k) => batcher.process(k)));
    await batcher.process(4);
    expect(pool.infoReads).toBe(1);
    const info = pool.executed.find((e) => e.sql.startsWith("SELECT @@max_allowed_packet"));
    expect(info?.values).toEqual([]);
  });

  it("releases every connection and never ends the pool", async () => {
    const pool = new FakeMysqlPool(byName);
    const batcher = make(pool, { maxBatchSize: 2 });
    await Promise.all(["a", "b", "c", "x"].map((k) => batcher.process(k)));
    await batcher.stop();
    expect(pool.released).toBe(pool.acquired);
    expect(pool.ended).toBe(false);
  });
});

describe("MysqlLoadBatcher defaults", () => {
  it("loads at most 250 distinct keys per query, with no wait", async () => {
    const pool = new FakeMysqlPool(server([], () => false));
    const batcher = new MysqlLoadBatcher<number, Row>({ pool, table: "users", key: "id" });
    const sizes: number[] = [];
    batcher.on("batchStart", (e) => sizes.push(e.size));
    await Promise.all(Array.from({ length: 600 }, (_, i) => batcher.process(i)));
    expect(sizes).toEqual([250, 250, 100]);
    await batcher.stop();
  });
});
