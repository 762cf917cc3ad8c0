import { Buffer } from "node:buffer";
import type { MysqlPool, MysqlStatement, TableSpec } from "./common.js";

/** What the batchers read from the server once, before their first statement. */
export interface ServerInfo {
  /** `@@max_allowed_packet`, in bytes. */
  readonly maxAllowedPacket: number;
  /** `@@auto_increment_increment`: the step between consecutive generated ids. */
  readonly autoIncrementIncrement: number;
  /** `@@innodb_autoinc_lock_mode`: 0 traditional, 1 consecutive, 2 interleaved. */
  readonly autoIncLockMode: number;
  /** `VERSION()`, such as `10.11.6-MariaDB`. */
  readonly version: string;
  /** The table's storage engine, when it was found in `information_schema`. */
  readonly engine: string | undefined;
  /** The table's AUTO_INCREMENT column, when it has one. */
  readonly autoIncrementColumn: string | undefined;
}

/**
 * Reads the server variables, and with `table`, the table's engine and AUTO_INCREMENT column:
 * one query, on a connection of its own, closed after use. Table names compare in
 * `information_schema` by its collation (case-insensitive): an exact match is preferred.
 */
export async function readServerInfo(
  pool: MysqlPool,
  table: TableSpec | undefined,
): Promise<ServerInfo> {
  const catalog =
    table === undefined
      ? "NULL AS engine, NULL AS auto_column"
      : `(SELECT ENGINE FROM information_schema.TABLES
           WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
           ORDER BY BINARY TABLE_NAME = BINARY ? DESC LIMIT 1) AS engine,
         (SELECT COLUMN_NAME FROM information_schema.COLUMNS
           WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
             AND EXTRA LIKE '%auto_increment%'
           ORDER BY BINARY TABLE_NAME = BINARY ? DESC LIMIT 1) AS auto_column`;
  const statement: MysqlStatement = {
    sql: `SELECT @@max_allowed_packet AS max_allowed_packet,
       @@auto_increment_increment AS auto_increment_increment,
       @@innodb_autoinc_lock_mode AS autoinc_lock_mode,
       VERSION() AS version,
       ${catalog}`,
    rowsAsArray: false,
    nestTables: false,
  };
  const values =
    table === undefined
      ? []
      : [
          table.schema ?? null,
          table.name,
          table.name,
          table.schema ?? null,
          table.name,
          table.name,
        ];
  const connection = await pool.getConnection();
  let rows: unknown;
  try {
    [rows] = await connection.execute(statement, values);
  } finally {
    try {
      connection.unprepare(statement);
    } catch {
      // The connection is gone, and the statement with it.
    }
    connection.release();
  }
  const row = (Array.isArray(rows) ? rows[0] : undefined) as Record<string, unknown> | undefined;
  if (row === undefined) throw new Error("SELECT @@max_allowed_packet returned no row");
  const text = (value: unknown) =>
    value === null || value === undefined
      ? undefined
      : Buffer.isBuffer(value)
        ? value.toString("utf8")
        : String(value);
  return {
    maxAllowedPacket: Number(row.max_allowed_packet),
    autoIncrementIncrement: Number(row.auto_increment_increment),
    autoIncLockMode: Number(row.autoinc_lock_mode),
    version: text(row.version) ?? "",
    engine: text(row.engine),
    autoIncrementColumn: text(row.auto_column),
  };
}
