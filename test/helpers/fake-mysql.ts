/**
 * A fake `mysql2/promise` pool for the unit tests of `async-batcher/mysql`: it answers the
 * server-variables query with `info`, records every other statement (with the connection it ran
 * on), and hands it to a handler. By default an INSERT succeeds with consecutive ids, as InnoDB
 * gives them, and a load finds nothing.
 */
import type { MysqlConnection, MysqlStatement, MysqlValue } from "async-batcher/mysql";

export interface Executed {
  statement: MysqlStatement;
  sql: string;
  values: MysqlValue[];
  /** The fake connection it ran on (1, 2, ...). */
  connection: number;
}

export type Handler = (sql: string, values: MysqlValue[]) => unknown;

/** A driver error as mysql2 makes it. */
export function driverError(
  errno: number,
  code: string,
  sqlState: string,
  fatal = false,
): Error & { errno: number; code: string; sqlState: string; fatal?: boolean } {
  const error = Object.assign(new Error(`${code}: fake`), { errno, code, sqlState });
  if (fatal) Object.assign(error, { fatal: true });
  return error;
}

/** Rows of an INSERT: placeholders ÷ placeholders per row. */
export function rowsOf(sql: string, values: readonly unknown[]): number {
  const tuple = /VALUES (\([?,]+\))/.exec(sql)?.[1] ?? "(?)";
  return values.length / (tuple.split("?").length - 1);
}

export class FakeMysqlPool {
  readonly executed: Executed[] = [];
  readonly unprepared: { sql: string; connection: number }[] = [];
  infoReads = 0;
  acquired = 0;
  released = 0;
  ended = false;
  /** Open prepared statements per connection, as mysql2 keeps them. */
  readonly prepared = new Map<number, Set<string>>();
  info: Record<string, unknown> = {
    max_allowed_packet: 16 * 1024 * 1024,
    auto_increment_increment: 1,
    autoinc_lock_mode: 1,
    version: "10.11.6-MariaDB",
    engine: "InnoDB",
    auto_column: "id",
  };
  /** When set, the server-variables query rejects with it. */
  infoError: unknown;
  handler: Handler;
  nextId = 1;
  /** What `pool.pool.config` says of a real mysql2 pool. */
  readonly pool = { config: { connectionLimit: 10 } };
  #connections = 0;

  constructor(handler?: Handler) {
    this.handler = handler ?? ((sql, values) => this.insertOk(sql, values));
  }

  /** The OK packet of an INSERT that inserted every row, with consecutive ids. */
  insertOk(sql: string, values: readonly unknown[]): unknown {
    if (!sql.startsWith("INSERT")) return [];
    const rows = rowsOf(sql, values);
    const first = this.nextId;
    this.nextId += rows;
    return { affectedRows: rows, insertId: first, warningStatus: 0 };
  }

  /** Statements other than the server-variables query. */
  get statements(): Executed[] {
    return this.executed.filter((e) => !e.sql.startsWith("SELECT @@max_allowed_packet"));
  }

  /** Connections are reused, as a pool's are: prepared statements stay on them. */
  readonly #idle: MysqlConnection[] = [];

  async getConnection(): Promise<MysqlConnection> {
    this.acquired++;
    await Promise.resolve();
    const idle = this.#idle.pop();
    if (idle !== undefined) return idle;
    const id = ++this.#connections;
    const open = new Set<string>();
    this.prepared.set(id, open);
    const connection: MysqlConnection = {
      execute: async (statement, values) => {
        await Promise.resolve();
        this.executed.push({ statement, sql: statement.sql, values, connection: id });
        open.add(statement.sql);
        if (statement.sql.startsWith("SELECT @@max_allowed_packet")) {
          this.infoReads++;
          if (this.infoError !== undefined) throw this.infoError;
          return [[{ ...this.info }], []] as const;
        }
        return [await this.handler(statement.sql, values), []] as const;
      },
      unprepare: (statement) => {
        if (open.delete(statement.sql))
          this.unprepared.push({ sql: statement.sql, connection: id });
      },
      release: () => {
        this.released++;
        this.#idle.push(connection);
      },
    };
    return connection;
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
}
