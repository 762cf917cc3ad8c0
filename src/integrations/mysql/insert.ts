import { AsyncBatcher } from "../../batcher.js";
import { InvalidInputError, ItemTooLargeError } from "../../errors.js";
import {
  type BatcherOptions,
  booleanOption,
  describe,
  type TunableOptions,
} from "../../options.js";
import type { BatchResult, ProcessOptions } from "../../types.js";
import { Lazy } from "../shared/lazy.js";
import {
  coreOptions,
  identifierListOption,
  isStatementLevel,
  MAX_PLACEHOLDERS,
  type MysqlPool,
  type MysqlStatement,
  type MysqlTable,
  type MysqlValue,
  PacketSplitError,
  packetOption,
  poolOption,
  Statements,
  type TableSpec,
  type Tunables,
  tableOption,
  tunedOptions,
} from "./common.js";
import { parameterSize, toParameter } from "./encode.js";
import { readServerInfo, type ServerInfo } from "./server.js";
import {
  type InsertShape,
  insertShape,
  insertSql,
  PACKET_MARGIN,
  rowOverhead,
  statementOverhead,
} from "./sql.js";

/**
 * A column name: one of the row type's keys (suggested by editors), or any string. Never used to
 * infer `Row` (rows may leave columns out).
 */
// `[T][T extends unknown ? 0 : never]` is `NoInfer<T>` for TypeScript before 5.4.
export type MysqlColumnName<Row> = [Extract<keyof Row, string> | (string & {})][Row extends unknown
  ? 0
  : never];

/** What the server said about the statement that inserted a row (shared by its callers). */
export interface MysqlStatementResult {
  /** Rows in the statement: the batch, or the part of it this row was tried in. */
  readonly rows: number;
  /**
   * The server's count for the whole statement: 1 per inserted row; with `ignore`, 0 per
   * ignored row; with `onDuplicateKeyUpdate`, 2 per updated row and 0 (1 with mysql2's default
   * `FOUND_ROWS` flag) per row left as it was.
   */
  readonly affectedRows: number;
  /**
   * The first AUTO_INCREMENT value the statement generated (`LAST_INSERT_ID()`), 0 when it
   * generated none. Exact up to 2^53.
   */
  readonly insertId: number;
  /** Warnings the statement raised (`SHOW WARNINGS` tells them; `ignore` turns errors into warnings). */
  readonly warnings: number;
}

/** What a caller of `MysqlInsertBatcher` gets once its row is committed. */
export interface MysqlInsertResult {
  /**
   * The AUTO_INCREMENT value of this row, when the server makes it certain: a plain INSERT (no
   * `ignore`, no `onDuplicateKeyUpdate`) into an InnoDB table with an AUTO_INCREMENT column that
   * the statement's rows leave NULL or out, under `innodb_autoinc_lock_mode` 0 or 1 (1 is the
   * default of MariaDB and of MySQL 5.7; MySQL 8 defaults to 2). Then one multi-row INSERT takes
   * consecutive values, and row `i` of the statement gets `insertId + i ×
   * auto_increment_increment`. Otherwise `undefined` (see the guide).
   */
  readonly insertId: number | undefined;
  /**
   * This row's share of `statement.affectedRows` when it is certain: 1 for a plain INSERT; with
   * `ignore`, 1 or 0 when the statement inserted all or none of its rows; with
   * `onDuplicateKeyUpdate`, the count itself for a statement of one row (and 2 when every row
   * was updated). Otherwise `undefined`.
   */
  readonly affectedRows: number | undefined;
  /** The statement that committed this row. */
  readonly statement: MysqlStatementResult;
}

/** Options of `MysqlInsertBatcher`: the table's, and the core batcher options. */
export interface MysqlInsertBatcherOptions<Row extends object = Record<string, unknown>>
  extends Omit<
    BatcherOptions<Row>,
    "keyOf" | "dedupe" | "onMissingResult" | "executor" | "closeExecutor" | "weigh"
  > {
  /**
   * A `mysql2/promise` pool (`mysql.createPool(...)`), or anything with its `getConnection()`.
   * Never closed by the batcher.
   */
  pool: MysqlPool;
  /**
   * The table. A string is one identifier, used exactly as written (quoted with backticks,
   * never split on dots); `{ schema, name }` for a table of another database.
   */
  table: MysqlTable;
  /**
   * The columns inserted. A row may leave some out: they insert NULL (not the column's
   * default; an AUTO_INCREMENT column given NULL generates its value). A row field not listed
   * here rejects that caller with `InvalidInputError` (`reason: "column"`).
   */
  columns: readonly MysqlColumnName<Row>[];
  /**
   * Upsert: `ON DUPLICATE KEY UPDATE c = VALUES(c)` for each column listed, or for every column
   * of `columns` with `true` (including those of the unique key that matched: they are set to
   * the values they already compare equal to). Works on MariaDB and MySQL (MySQL 8.0.20+ warns
   * that `VALUES()` is deprecated). Callers get no `insertId`.
   * @default undefined (a duplicate key rejects that caller with `ER_DUP_ENTRY`)
   */
  onDuplicateKeyUpdate?: readonly MysqlColumnName<Row>[] | true;
  /**
   * `INSERT IGNORE`: a row that conflicts with a unique key is skipped, and so the server also
   * turns data errors into warnings (a string too long is truncated, a bad number becomes 0)
   * instead of rejecting the row. Callers get no `insertId`.
   * @default false
   */
  ignore?: boolean;
  /**
   * The server's `max_allowed_packet`, in bytes: every statement is kept under it.
   * @default read once from the server (`SELECT @@max_allowed_packet`) before the first batch
   */
  maxAllowedPacket?: number;
  /**
   * Keep the prepared statements of a full batch (`maxBatchSize` rows) and of batches of up to 8
   * rows open on each connection, for the next batch of that size: saves a round trip and the
   * server's parse of the statement. Every other statement is closed after its single use (each
   * row count is a statement of its own, and each holds server memory).
   * @default true
   */
  keepPrepared?: boolean;
  /**
   * Most rows in one batch (one INSERT statement); at most 65,535 ÷ columns (the placeholder
   * limit of a prepared statement): the batcher lowers it itself.
   * @default 250
   */
  maxBatchSize?: number;
  /**
   * Most bytes of values in one statement, as the batcher estimates them; at most what
   * `max_allowed_packet` leaves (the batcher lowers it itself).
   * @default what `max_allowed_packet` allows
   */
  maxBatchWeight?: number;
  /**
   * Most milliseconds the oldest row waits for others before its batch is sent.
   * `0`: none; rows that arrive together go together, and batches grow while every
   * `concurrency` slot is busy.
   * @default 0
   */
  maxQueueTime?: number;
  /**
   * Most statements running at once: keep it at most the pool's `connectionLimit`.
   * @default 4, or the pool's `connectionLimit` when smaller
   */
  concurrency?: number;
  /**
   * A statement that fails is tried again in halves, recursively, so that only the rows that
   * fail on their own reject (each with the driver's error) and every other row is inserted.
   * Errors no row can cause (connection lost, no such table, syntax, access denied) are not
   * split: they reject the whole batch at once.
   * @default true
   */
  splitOnError?: boolean;
}

/** A row as queued: its values in column order, fixed at `process()`, and its weight. */
interface PreparedRow {
  /** The caller's row, for a `batchKey` function. */
  readonly row: object;
  readonly values: MysqlValue[];
  readonly weight: number;
}

/**
 * Batches of at most this many rows keep their statement prepared too, whatever `maxBatchSize`:
 * at low traffic most batches are that small, and a kept statement saves them a round trip
 * (about 1.4× the inserts per second, measured with one to three callers). Their statements
 * are small: 36 rows in all.
 */
const SMALL_KEPT = 8;

const OWN_KEYS = [
  "pool",
  "table",
  "columns",
  "onDuplicateKeyUpdate",
  "ignore",
  "maxAllowedPacket",
  "keepPrepared",
] as const;

function updateOption(value: unknown, columns: readonly string[]): string[] | undefined {
  if (value === undefined) return undefined;
  if (value === true) return [...columns];
  if (!Array.isArray(value)) {
    throw new TypeError(
      `onDuplicateKeyUpdate must be true or an array of column names, got ${describe(value)}`,
    );
  }
  const update = identifierListOption("onDuplicateKeyUpdate", value);
  for (const column of update) {
    if (!columns.includes(column)) {
      throw new TypeError(
        `onDuplicateKeyUpdate names ${JSON.stringify(column)}, which is not one of columns`,
      );
    }
  }
  return update;
}

function isRowObject(row: unknown): row is object {
  return (
    typeof row === "object" &&
    row !== null &&
    !Array.isArray(row) &&
    !(row instanceof Date) &&
    !(row instanceof Map) &&
    !(row instanceof Set) &&
    !ArrayBuffer.isView(row)
  );
}

/**
 * Batched INSERTs into MariaDB or MySQL with `mysql2`: `process(row)` inserts one row and
 * resolves once it is committed; each batch is ONE multi-row `INSERT INTO t (...) VALUES
 * (?,?),(?,?),...` statement, prepared on the server (values travel apart from the SQL, in the
 * binary protocol), kept under the placeholder limit and `max_allowed_packet`.
 *
 * A row that fails (duplicate key, check constraint, bad value) rejects its caller alone with
 * the driver's error: the batch is tried again in halves (`splitOnError`), and every other row is
 * inserted. A row with a field that is not a column, or of a type that cannot be sent, rejects
 * at once with `InvalidInputError`.
 *
 * ```ts
 * const events = new MysqlInsertBatcher<Event>({ pool, table: "events", columns: ["kind", "at"] });
 * const { insertId } = await events.process({ kind: "click", at: new Date() });
 * ```
 *
 * @typeParam Row - the row each caller inserts: an object keyed by column name
 */
export class MysqlInsertBatcher<Row extends object = Record<string, unknown>> extends AsyncBatcher<
  Row,
  MysqlInsertResult
> {
  /** The table, as quoted in the SQL. */
  readonly table: string;
  /** The columns inserted, in order. */
  readonly columns: readonly string[];
  readonly #pool: MysqlPool;
  readonly #tableSpec: TableSpec;
  readonly #columnIndex: ReadonlyMap<string, number>;
  readonly #shape: InsertShape;
  readonly #ignore: boolean;
  readonly #upsert: boolean;
  readonly #statements: Statements;
  readonly #info: Lazy<ServerInfo>;
  readonly #defaults: Tunables;
  /** Most rows per statement: the placeholder limit. */
  readonly #maxRows: number;
  /** Bytes of a statement besides its rows. */
  readonly #overhead: number;
  /** Bytes the rows of one statement may take: Infinity until `max_allowed_packet` is known. */
  #budget: number;
  #packetKnown: boolean;
  /** The caller's `maxBatchWeight` (the core's is the smaller of it and `#budget`). */
  #userWeight: number;
  #maxBatchSize: number;
  /**
   * The statements kept open on the connections (see `keepPrepared`), by row count: a full
   * batch's, and those of the smallest batches (up to `SMALL_KEPT` rows).
   */
  readonly #kept = new Map<number, MysqlStatement>();

  /** Checks every option (a bad one throws a `TypeError`/`RangeError` naming it). No query is sent. */
  constructor(options: MysqlInsertBatcherOptions<Row>) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `options must be an object with pool, table and columns, got ${describe(options)}`,
      );
    }
    const pool = poolOption(options.pool);
    const table = tableOption(options.table);
    const columns = identifierListOption("columns", options.columns);
    const update = updateOption(options.onDuplicateKeyUpdate, columns);
    const ignore = booleanOption("ignore", options.ignore, false);
    const packet = packetOption(options.maxAllowedPacket);
    const keep = booleanOption("keepPrepared", options.keepPrepared, true);
    const shape = insertShape({ table: table.sql, columns, ignore, update });
    const maxRows = Math.floor(MAX_PLACEHOLDERS / columns.length);
    const overhead = statementOverhead(shape.prefix + shape.suffix, maxRows * columns.length);
    // Until the server has told its max_allowed_packet, batches are not bounded by it (an
    // assumed value would refuse rows the server accepts): see processBatch.
    const budget =
      packet === undefined
        ? Number.POSITIVE_INFINITY
        : Math.max(1, packet - overhead - PACKET_MARGIN);
    const { core, defaults } = coreOptions(
      options as unknown as Record<string, unknown>,
      OWN_KEYS,
      pool,
      "MysqlInsertBatcher",
      maxRows,
      (item: PreparedRow) => item.weight,
    );
    const userWeight = (core.maxBatchWeight as number | undefined) ?? Number.POSITIVE_INFINITY;
    core.maxBatchWeight = Math.min(userWeight, budget);
    // The queue holds prepared rows: the caller's batchKey sees the caller's row.
    const batchKey = core.batchKey as ((row: object) => string | number) | undefined;
    if (batchKey !== undefined) core.batchKey = (item: PreparedRow) => batchKey(item.row);
    super(core as BatcherOptions<Row, MysqlInsertResult>);
    this.table = table.sql;
    this.columns = columns;
    this.#pool = pool;
    this.#tableSpec = table;
    this.#columnIndex = new Map(columns.map((c, i) => [c, i]));
    this.#shape = shape;
    this.#ignore = ignore;
    this.#upsert = update !== undefined;
    this.#statements = new Statements(pool, keep);
    this.#info = new Lazy(() => readServerInfo(this.#pool, this.#tableSpec));
    this.#defaults = defaults;
    this.#maxRows = maxRows;
    this.#overhead = overhead;
    this.#budget = budget;
    this.#packetKnown = packet !== undefined;
    this.#userWeight = userWeight;
    this.#maxBatchSize = core.maxBatchSize as number;
  }

  /**
   * Queues one row and resolves with its `insertId` (when certain) once it is committed.
   * Rejects at once, alone, with `InvalidInputError` when the row is not an object (`reason:
   * "type"`), has a field that is not one of `columns` (`"column"`), or holds a value that cannot
   * be sent (a function, an invalid `Date`: `"type"` / `"value"`). The values are read now: a
   * later change to the object does not reach the database.
   */
  override process(row: Row, options?: ProcessOptions): Promise<MysqlInsertResult> {
    let prepared: PreparedRow;
    try {
      prepared = this.#prepare(row);
    } catch (error) {
      return Promise.reject(error);
    }
    return super.process(prepared as unknown as Row, options);
  }

  /**
   * Changes limits on the running batcher, as `AsyncBatcher.setOptions` does. `maxBatchSize` is
   * capped at the placeholder limit and `maxBatchWeight` at what `max_allowed_packet` leaves; a
   * key set to `undefined` goes back to this batcher's default.
   */
  override setOptions(options: TunableOptions): void {
    const tuned = tunedOptions(options, this.#defaults, this.#maxRows, this.#budget);
    super.setOptions(tuned);
    if (typeof options === "object" && options !== null && "maxBatchWeight" in options) {
      this.#userWeight = options.maxBatchWeight ?? Number.POSITIVE_INFINITY;
    }
    if (tuned.maxBatchSize !== undefined && tuned.maxBatchSize !== this.#maxBatchSize) {
      this.#maxBatchSize = tuned.maxBatchSize;
      for (const [size, statement] of this.#kept) {
        if (size > SMALL_KEPT) {
          this.#statements.retire(statement);
          this.#kept.delete(size);
        }
      }
    }
  }

  /** Inserts one batch with one statement. Called by the batcher; not for direct use. */
  async processBatch(batch: Row[]): Promise<BatchResult<MysqlInsertResult>> {
    const rows = batch as unknown as PreparedRow[];
    let info: ServerInfo;
    try {
      info = await this.#info.get();
    } catch (error) {
      if (isStatementLevel(error)) return rows.map(() => error as Error);
      throw error;
    }
    if (!this.#packetKnown) this.#learnPacket(info.maxAllowedPacket);
    let weight = 0;
    for (const row of rows) weight += row.weight;
    if (weight > this.#budget) {
      // Only for batches cut before the server's max_allowed_packet was known: a row too large
      // alone rejects; a batch is tried in halves (no round trip was made), which may fit.
      if (rows.length === 1) return [new ItemTooLargeError(weight, this.#budget)];
      throw new PacketSplitError(
        `a batch of ${rows.length} rows (about ${weight} bytes) does not fit in max_allowed_packet (${info.maxAllowedPacket}): split it`,
      );
    }
    const values: MysqlValue[] = [];
    for (const row of rows) for (const value of row.values) values.push(value);
    const keep = rows.length === this.#maxBatchSize || rows.length <= SMALL_KEPT;
    let statement = this.#kept.get(rows.length);
    if (statement === undefined) {
      statement = { sql: insertSql(this.#shape, rows.length) };
      if (keep) this.#kept.set(rows.length, statement);
    }
    let result: unknown;
    try {
      result = await this.#statements.run(statement, values, keep);
    } catch (error) {
      if (isStatementLevel(error)) return rows.map(() => error as Error);
      throw error;
    }
    return this.#results(rows, result as Header, info);
  }

  /** The row as queued: checked, its values in column order, and weighed. */
  #prepare(row: Row): PreparedRow {
    if (!isRowObject(row)) {
      throw new InvalidInputError(
        "type",
        `a row must be an object keyed by column name, got ${describe(row)}`,
      );
    }
    for (const field of Object.keys(row)) {
      if (!this.#columnIndex.has(field)) {
        throw new InvalidInputError(
          "column",
          `row field ${JSON.stringify(field)} is not one of the columns of ${this.table} (${this.columns.join(", ")})`,
        );
      }
    }
    const record = row as Record<string, unknown>;
    const values = this.columns.map((column) =>
      toParameter(record[column], `the value of column ${JSON.stringify(column)}`),
    );
    let weight = rowOverhead(values.length);
    for (const value of values) weight += parameterSize(value);
    return { row, values, weight };
  }

  /** Now that the server's `max_allowed_packet` is known, bound the next batches by it. */
  #learnPacket(packet: number): void {
    this.#packetKnown = true;
    this.#budget = Math.max(1, packet - this.#overhead - PACKET_MARGIN);
    super.setOptions({ maxBatchWeight: Math.min(this.#userWeight, this.#budget) });
  }

  /** Each row's result, from the statement's OK packet. */
  #results(rows: readonly PreparedRow[], header: Header, info: ServerInfo): MysqlInsertResult[] {
    const n = rows.length;
    const affected = Number(header.affectedRows ?? 0);
    const statement: MysqlStatementResult = Object.freeze({
      rows: n,
      affectedRows: affected,
      insertId: Number(header.insertId ?? 0),
      warnings: Number(header.warningStatus ?? 0),
    });
    let share: number | undefined;
    if (this.#upsert) share = n === 1 ? affected : affected === 2 * n ? 2 : undefined;
    else if (this.#ignore) share = affected === n ? 1 : affected === 0 ? 0 : undefined;
    else share = 1;
    const first = this.#firstId(rows, header, info);
    const step = info.autoIncrementIncrement;
    const out = new Array<MysqlInsertResult>(n);
    for (let i = 0; i < n; i++) {
      const id = first === undefined ? undefined : first + i * step;
      out[i] = {
        insertId: id !== undefined && Number.isSafeInteger(id) ? id : undefined,
        affectedRows: share,
        statement,
      };
    }
    return out;
  }

  /** The statement's first generated id, when row `i` certainly got `first + i × step`. */
  #firstId(rows: readonly PreparedRow[], header: Header, info: ServerInfo): number | undefined {
    if (this.#ignore || this.#upsert) return undefined;
    if (info.engine?.toLowerCase() !== "innodb") return undefined;
    if (info.autoIncLockMode !== 0 && info.autoIncLockMode !== 1) return undefined;
    if (!(Number.isInteger(info.autoIncrementIncrement) && info.autoIncrementIncrement > 0)) {
      return undefined;
    }
    const auto = info.autoIncrementColumn;
    if (auto === undefined) return undefined;
    const first = header.insertId;
    if (typeof first !== "number" || !Number.isSafeInteger(first) || first <= 0) return undefined;
    // A row that gives the AUTO_INCREMENT column a value (even 0) breaks the sequence.
    const index = this.columns.findIndex(
      (c) => c.localeCompare(auto, undefined, { sensitivity: "base" }) === 0,
    );
    if (index >= 0 && rows.some((row) => row.values[index] !== null)) return undefined;
    return first;
  }
}

/** What `execute()` resolves with for an INSERT (mysql2's `ResultSetHeader`). */
interface Header {
  affectedRows?: number;
  insertId?: number | string;
  warningStatus?: number;
}
