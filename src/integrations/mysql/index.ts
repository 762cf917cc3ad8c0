// The MySQL subpath is for Node.js (as mysql2 is): its declarations use Node's types.
/// <reference types="node" />
/**
 * `async-batcher/mysql`: batched INSERTs, upserts and lookups for MariaDB and MySQL with
 * `mysql2` (an optional peer dependency). The batchers take your `mysql2/promise` pool and never
 * close it; they import nothing from `mysql2` at run time.
 */
export { InvalidInputError, type InvalidInputReason } from "../../errors.js";
export type {
  MysqlConnection,
  MysqlPool,
  MysqlStatement,
  MysqlTable,
  MysqlValue,
} from "./common.js";
export {
  type MysqlColumnName,
  MysqlInsertBatcher,
  type MysqlInsertBatcherOptions,
  type MysqlInsertResult,
  type MysqlStatementResult,
} from "./insert.js";
export { MysqlLoadBatcher, type MysqlLoadBatcherOptions } from "./load.js";
