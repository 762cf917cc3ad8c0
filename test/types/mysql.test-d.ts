/**
 * Type tests of `async-batcher/mysql`: a `mysql2/promise` pool (and pool cluster) fits, rows in,
 * `MysqlInsertResult` out; loads resolve with the row or null; the options typed.
 */
import type { AsyncBatcher } from "async-batcher";
import {
  type InvalidInputReason,
  MysqlInsertBatcher,
  type MysqlInsertBatcherOptions,
  type MysqlInsertResult,
  MysqlLoadBatcher,
  type MysqlLoadBatcherOptions,
  type MysqlPool,
} from "async-batcher/mysql";
import mysql, { type Pool, type PoolCluster, type PoolNamespace } from "mysql2/promise";
import { describe, expectTypeOf, it } from "vitest";

interface Event {
  id?: number;
  kind: string;
  payload?: string | null;
}

const pool = mysql.createPool({ uri: "mysql://root@127.0.0.1:3306/test" });

describe("MysqlInsertBatcher", () => {
  it("takes a mysql2/promise pool and rows (interfaces too); resolves with MysqlInsertResult", () => {
    expectTypeOf<Pool>().toExtend<MysqlPool>();
    expectTypeOf<PoolCluster>().toExtend<MysqlPool>();
    expectTypeOf<PoolNamespace>().toExtend<MysqlPool>();
    const batcher = new MysqlInsertBatcher<Event>({ pool, table: "events", columns: ["kind"] });
    expectTypeOf(batcher.process({ kind: "x" })).toEqualTypeOf<Promise<MysqlInsertResult>>();
    expectTypeOf<MysqlInsertResult["insertId"]>().toEqualTypeOf<number | undefined>();
    expectTypeOf(batcher).toExtend<AsyncBatcher<Event, MysqlInsertResult>>();
    // @ts-expect-error: a row is an object
    batcher.process("row");
    // @ts-expect-error: kind is required by Event
    batcher.process({ payload: "p" });
  });

  it("suggests the row's keys as column names, and accepts any string", () => {
    expectTypeOf<MysqlInsertBatcherOptions<Event>["columns"][number]>().toExtend<string>();
    new MysqlInsertBatcher<Event>({
      pool,
      table: { schema: "app", name: "events" },
      columns: ["kind", "payload", "created_at"],
      onDuplicateKeyUpdate: ["payload"],
      ignore: false,
      maxAllowedPacket: 16 * 1024 * 1024,
      keepPrepared: true,
      batchKey: (row) => row.kind,
    });
    new MysqlInsertBatcher<Event>({
      pool,
      table: "e",
      columns: ["kind"],
      onDuplicateKeyUpdate: true,
    });
  });

  it("refuses the options it sets itself", () => {
    // @ts-expect-error: the batcher weighs rows itself
    new MysqlInsertBatcher<Event>({ pool, table: "e", columns: ["kind"], weigh: () => 1 });
    // @ts-expect-error: keyOf is not an option here
    new MysqlInsertBatcher<Event>({ pool, table: "e", columns: ["kind"], keyOf: (r) => r.kind });
  });
});

describe("MysqlLoadBatcher", () => {
  it("resolves with the row or null", () => {
    const users = new MysqlLoadBatcher<number, { id: number; name: string }>({
      pool,
      table: "users",
      key: "id",
      columns: ["id", "name"],
    });
    expectTypeOf(users.process(1)).toEqualTypeOf<Promise<{ id: number; name: string } | null>>();
    // @ts-expect-error: keys are numbers here
    users.process("1");
    const any = new MysqlLoadBatcher({ pool, table: "users", key: "id" });
    expectTypeOf(any.process).parameter(0).toEqualTypeOf<unknown>();
    expectTypeOf(any.process(1)).resolves.toEqualTypeOf<Record<string, unknown> | null>();
  });

  it("options are typed", () => {
    expectTypeOf<MysqlLoadBatcherOptions["key"]>().toEqualTypeOf<string>();
    expectTypeOf<MysqlLoadBatcherOptions["columns"]>().toEqualTypeOf<
      "*" | readonly string[] | undefined
    >();
    expectTypeOf<"column">().toExtend<InvalidInputReason>();
  });
});
