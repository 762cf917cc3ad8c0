/**
 * Type tests of `async-batcher/pg`: a `pg.Pool` fits, rows in, `void` or the returned row (or
 * null) out, loads resolve with the row or null; the options typed.
 */
import type { AsyncBatcher } from "async-batcher";
import {
  type InvalidInputReason,
  PgInsertBatcher,
  type PgInsertBatcherOptions,
  PgLoadBatcher,
  type PgLoadBatcherOptions,
  type PgPool,
} from "async-batcher/pg";
import pg from "pg";
import { describe, expectTypeOf, it } from "vitest";

interface Event {
  user_id: number;
  kind: string;
  payload?: string;
}

const pool = new pg.Pool();

describe("PgInsertBatcher", () => {
  it("takes a pg.Pool and rows; resolves with void without returning", () => {
    expectTypeOf(pool).toExtend<PgPool>();
    expectTypeOf<pg.Client>().toExtend<PgPool>();
    const batcher = new PgInsertBatcher<Event>({
      pool,
      table: "events",
      columns: ["user_id", "kind"],
    });
    expectTypeOf(batcher.process({ user_id: 1, kind: "x" })).toEqualTypeOf<Promise<void>>();
    expectTypeOf(batcher).toExtend<AsyncBatcher<Event, void>>();
    // @ts-expect-error: a row is an object
    batcher.process("row");
  });

  it("resolves with the returned row or null with returning", () => {
    const batcher = new PgInsertBatcher<Event, { id: string }>({
      pool,
      table: "events",
      columns: ["user_id", "kind"],
      returning: ["id"],
      onConflict: { target: ["user_id"], action: "update", set: ["kind"] },
    });
    expectTypeOf(batcher.process({ user_id: 1, kind: "x" })).toEqualTypeOf<
      Promise<{ id: string } | null>
    >();
  });

  it("infers the row from where the batcher goes, and takes any column names", () => {
    const columns: string[] = ["user_id", "kind"];
    const holder: { batcher: { process(row: Event): Promise<unknown> } } = {
      batcher: new PgInsertBatcher({ pool, table: "events", columns }),
    };
    expectTypeOf(holder.batcher.process).parameter(0).toEqualTypeOf<Event>();
    const untyped = new PgInsertBatcher({ pool, table: { schema: "s", name: "t" }, columns });
    expectTypeOf(untyped.process).parameter(0).toEqualTypeOf<Record<string, unknown>>();
  });

  it("sets keyOf, dedupe and the executor itself", () => {
    expectTypeOf<PgInsertBatcherOptions>().not.toHaveProperty("keyOf");
    expectTypeOf<PgInsertBatcherOptions>().not.toHaveProperty("dedupe");
    expectTypeOf<PgInsertBatcherOptions>().not.toHaveProperty("executor");
    expectTypeOf<PgInsertBatcherOptions>().toHaveProperty("splitOnError");
    expectTypeOf<"column">().toExtend<InvalidInputReason>();
  });
});

describe("PgLoadBatcher", () => {
  it("resolves with the row or null", () => {
    const users = new PgLoadBatcher<number, { id: number; name: string }>({
      pool,
      table: "users",
      key: "id",
    });
    expectTypeOf(users.process(1)).toEqualTypeOf<Promise<{ id: number; name: string } | null>>();
    const untyped = new PgLoadBatcher({ pool, table: "users", key: "id" });
    expectTypeOf(untyped.process(1)).toEqualTypeOf<Promise<Record<string, unknown> | null>>();
  });

  it("takes a table or a query, not both", () => {
    expectTypeOf<{ pool: PgPool; key: "id"; table: "t" }>().toExtend<PgLoadBatcherOptions>();
    expectTypeOf<{ pool: PgPool; key: "id"; query: "SELECT" }>().toExtend<PgLoadBatcherOptions>();
    expectTypeOf<{
      pool: PgPool;
      key: "id";
      query: "SELECT";
      table: "t";
    }>().not.toExtend<PgLoadBatcherOptions>();
    expectTypeOf<{ pool: PgPool; key: "id" }>().not.toExtend<PgLoadBatcherOptions>();
  });
});
