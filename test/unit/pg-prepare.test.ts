/**
 * Prepared statements in `async-batcher/pg`: each batcher runs its statement by a name derived
 * from its text (shared by batchers with the same text, never by two texts), `prepare: false`
 * sends no name, the VALUES form is never prepared, and a plan the server calls stale ("cached
 * plan must not change result type") is replaced: the table is read again and the batch runs
 * once more under the next name, so no caller sees the error; a second stale answer rejects the
 * batch with it.
 */
import { PgInsertBatcher, PgLoadBatcher } from "async-batcher/pg";
import { describe, expect, it } from "vitest";
import { isStalePlan, PgStatement } from "../../src/integrations/pg/common.js";
import { type FakeColumn, FakePool, type Handler, outcomes, pgError } from "../helpers/fake-pg.js";

const TABLE: FakeColumn[] = [
  { name: "id", type: "bigint", pk_position: 0 },
  { name: "name", type: "text" },
  { name: "tags", type: "integer[]", is_array: true },
];

const NAME = /^async_batcher_[0-9a-f]{40}_(\d+)$/;

const stale = () => pgError("0A000", "cached plan must not change result type");

/** Rows for every key, by position, as the table form's load query returns them. */
const found: Handler = (_text, values) => ({
  rows: (values[0] as unknown[]).map((key, i) => ({ __ord: String(i + 1), id: key, name: "n" })),
});

/** Answers stale `times` times, then as `then` does. */
function staleFirst(times: number, then: Handler): Handler {
  let left = times;
  return (text, values) => {
    if (left > 0) {
      left--;
      throw stale();
    }
    return then(text, values);
  };
}

const load = (pool: FakePool, over: Record<string, unknown> = {}) =>
  new PgLoadBatcher<number>({ pool, table: "t", key: "id", maxQueueTime: 0, ...over });

describe("PgStatement", () => {
  it("names a text by its hash and the generation: one name per text, 63 bytes at most", () => {
    const a = new PgStatement("SELECT 1", true);
    expect(a.name).toMatch(NAME);
    expect(a.name?.length).toBeLessThanOrEqual(63);
    expect(new PgStatement("SELECT 1", true).name).toBe(a.name);
    expect(new PgStatement("SELECT 2", true).name).not.toBe(a.name);
    expect(new PgStatement("SELECT 1", true, 1).name).toBe(a.name?.replace(/_0$/, "_1"));
    expect(a.config([1])).toEqual({ name: a.name, text: "SELECT 1", values: [1] });
    expect(new PgStatement("SELECT 1", false).config([1])).toEqual({
      text: "SELECT 1",
      values: [1],
    });
  });

  it("isStalePlan is the server's 'cached plan must not change result type' only", () => {
    expect(isStalePlan(stale())).toBe(true);
    expect(isStalePlan(pgError("0A000", "cross-database references are not implemented"))).toBe(
      false,
    );
    expect(isStalePlan(pgError("42703", "cached plan must not change result type"))).toBe(false);
    expect(isStalePlan(null)).toBe(false);
  });
});

describe("PgLoadBatcher", () => {
  it("runs every batch under one name; batchers with the same statement share it", async () => {
    const pool = new FakePool(TABLE, found);
    const a = load(pool);
    const b = load(pool);
    await Promise.all([a.process(1), a.process(2)]);
    await a.process(3);
    await b.process(4);
    const names = pool.statements.map((s) => s.name);
    expect(names[0]).toMatch(NAME);
    expect(new Set(names)).toEqual(new Set([names[0]]));
    // The catalog query is not prepared.
    expect(pool.queries.filter((q) => q.name === undefined)).toHaveLength(2);
    await Promise.all([a.stop(), b.stop()]);
  });

  it("prepare: false sends no name", async () => {
    const pool = new FakePool(TABLE, found);
    const batcher = load(pool, { prepare: false });
    expect(await batcher.process(1)).toEqual({ id: 1, name: "n" });
    expect(pool.statements[0]).not.toHaveProperty("name");
    await batcher.stop();
  });

  it("after a stale plan, reads the table again and runs the batch under the next name", async () => {
    const pool = new FakePool(TABLE, staleFirst(1, found));
    const batcher = load(pool);
    expect(await Promise.all([batcher.process(1), batcher.process(2)])).toEqual([
      { id: 1, name: "n" },
      { id: 2, name: "n" },
    ]);
    const generations = pool.statements.map((s) => NAME.exec(s.name ?? "")?.[1]);
    expect(generations).toEqual(["0", "1"]);
    expect(pool.catalogReads).toBe(2);
    // And stays there.
    await batcher.process(3);
    expect(NAME.exec(pool.statements[2]?.name ?? "")?.[1]).toBe("1");
    await batcher.stop();
  });

  it("batches that went stale together read the table again once, and all go on", async () => {
    const pool = new FakePool(TABLE, staleFirst(2, found));
    const batcher = load(pool, { maxBatchSize: 1, concurrency: 2 });
    expect(await Promise.all([batcher.process(1), batcher.process(2)])).toEqual([
      { id: 1, name: "n" },
      { id: 2, name: "n" },
    ]);
    const generations = pool.statements.map((s) => NAME.exec(s.name ?? "")?.[1]);
    expect(generations).toEqual(["0", "0", "1", "1"]);
    expect(pool.catalogReads).toBe(2);
    await batcher.stop();
  });

  it("a second stale answer for the same batch rejects its callers with it, unsplit", async () => {
    const pool = new FakePool(TABLE, staleFirst(2, found));
    const batcher = load(pool);
    const results = await outcomes([batcher.process(1), batcher.process(2)]);
    for (const r of results) expect(isStalePlan(r)).toBe(true);
    expect(pool.statements).toHaveLength(2);
    // The next batch goes on under the newer name.
    expect(await batcher.process(3)).toEqual({ id: 3, name: "n" });
    await batcher.stop();
  });

  it("the query form: runs the user's query by name, and renames it after a stale plan", async () => {
    const query = "SELECT * FROM t WHERE id = ANY($1)";
    const pool = new FakePool(
      TABLE,
      staleFirst(1, (_t, values) => ({
        rows: (values[0] as number[]).map((id) => ({ id, name: "q" })),
      })),
    );
    const batcher = new PgLoadBatcher<number>({ pool, query, key: "id", maxQueueTime: 0 });
    expect(await batcher.process(7)).toEqual({ id: 7, name: "q" });
    expect(pool.statements.map((s) => [s.text, NAME.exec(s.name ?? "")?.[1]])).toEqual([
      [query, "0"],
      [query, "1"],
    ]);
    expect(pool.catalogReads).toBe(0);
    await batcher.stop();
  });
});

describe("PgInsertBatcher", () => {
  const insert = (pool: FakePool, over: Record<string, unknown> = {}) =>
    new PgInsertBatcher({ pool, table: "t", columns: ["id", "name"], maxQueueTime: 0, ...over });

  it("runs the unnest statement by name, and renames it after a stale plan", async () => {
    const pool = new FakePool(
      TABLE,
      staleFirst(1, () => ({ rows: [] })),
    );
    const batcher = insert(pool);
    await Promise.all([batcher.process({ id: 1 }), batcher.process({ id: 2, name: "b" })]);
    const [first, second] = pool.statements;
    expect(NAME.exec(first?.name ?? "")?.[1]).toBe("0");
    expect(NAME.exec(second?.name ?? "")?.[1]).toBe("1");
    expect(second?.values).toEqual([
      [1, 2],
      [null, "b"],
    ]);
    expect(pool.catalogReads).toBe(2);
    await batcher.stop();
  });

  it("batches that went stale together read the table again once", async () => {
    const pool = new FakePool(
      TABLE,
      staleFirst(2, () => ({ rows: [] })),
    );
    const batcher = insert(pool, { maxBatchSize: 1, concurrency: 2 });
    await Promise.all([batcher.process({ id: 1 }), batcher.process({ id: 2 })]);
    const generations = pool.statements.map((s) => NAME.exec(s.name ?? "")?.[1]);
    expect(generations).toEqual(["0", "0", "1", "1"]);
    expect(pool.catalogReads).toBe(2);
    await batcher.stop();
  });

  it("prepare: false sends no name", async () => {
    const pool = new FakePool(TABLE);
    const batcher = insert(pool, { prepare: false });
    await batcher.process({ id: 1 });
    expect(pool.statements[0]).not.toHaveProperty("name");
    await batcher.stop();
  });

  it("never prepares the VALUES form (a text per row count)", async () => {
    const pool = new FakePool(TABLE);
    const batcher = insert(pool, { columns: ["id", "tags"] });
    await Promise.all([batcher.process({ id: 1, tags: [1] }), batcher.process({ id: 2 })]);
    await batcher.process({ id: 3 });
    expect(pool.statements).toHaveLength(2);
    for (const s of pool.statements) expect(s).not.toHaveProperty("name");
    await batcher.stop();
  });
});
