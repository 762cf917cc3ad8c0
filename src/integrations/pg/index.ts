// The PostgreSQL subpath is for Node.js (as pg is): it names prepared statements with node:crypto.
/// <reference types="node" />
/**
 * `async-batcher/pg`: batched INSERTs and lookups for PostgreSQL with `pg` (node-postgres, an
 * optional peer dependency). The batchers take your pool and never close it; they import
 * nothing from `pg` at run time.
 */
export { InvalidInputError, type InvalidInputReason } from "../../errors.js";
export type { PgPool, PgQueryResult, PgTable } from "./common.js";
export {
  type PgColumnName,
  PgInsertBatcher,
  type PgInsertBatcherOptions,
  type PgInsertResult,
  type PgOnConflict,
} from "./insert.js";
export {
  PgLoadBatcher,
  type PgLoadBatcherOptions,
  type PgLoadCoreOptions,
  type PgLoadQueryOptions,
  type PgLoadTableOptions,
} from "./load.js";
