import { AsyncBatcher } from "../../batcher.js";
import { InvalidInputError } from "../../errors.js";
import {
  type BatcherOptions,
  booleanOption,
  describe,
  type TunableOptions,
} from "../../options.js";
import type { BatchResult, ProcessOptions } from "../../types.js";
import { Lazy } from "../shared/lazy.js";
import { columnOf, readTableInfo } from "./catalog.js";
import {
  coreOptions,
  freshAlias,
  identifierListOption,
  identifierOption,
  isSchemaError,
  isStalePlan,
  isStatementLevel,
  type PgPool,
  PgStatement,
  type PgTable,
  poolOption,
  type TunableDefaults,
  tableOption,
  withDefaults,
} from "./common.js";
import { loadSql } from "./sql.js";

/** The core options a load batcher passes through, with its own defaults. */
export interface PgLoadCoreOptions<Key>
  extends Omit<
    BatcherOptions<Key>,
    "keyOf" | "dedupe" | "onMissingResult" | "executor" | "closeExecutor"
  > {
  /** A `pg.Pool` (or anything with its `query(config)`). Never closed by the batcher. */
  pool: PgPool;
  /**
   * Runs the query as a prepared statement: each connection parses and plans it once, not once
   * per batch. Set `false` behind a pooler that cannot keep prepared statements (PgBouncer in
   * transaction mode before 1.21, or with `max_prepared_statements = 0`).
   * @default true
   */
  prepare?: boolean;
  /**
   * The column the keys are looked up in (exactly as named, case-sensitive). With `query`, the
   * column of its result that holds each row's key.
   */
  key: string;
  /**
   * Most keys in one batch (one query).
   * @default 250
   */
  maxBatchSize?: number;
  /**
   * Most milliseconds the oldest key waits for others before its batch is sent.
   * `0`: none; rows that arrive together go together, and batches grow while every
   * `concurrency` slot is busy.
   * @default 0
   */
  maxQueueTime?: number;
  /**
   * Most queries running at once: keep it at most the pool's size.
   * @default 4, or the pool's `options.max` when smaller
   */
  concurrency?: number;
  /**
   * A query that fails (a key that is not a valid value of the key's type, say) is tried again
   * in halves, so that only the bad keys reject.
   * @default true
   */
  splitOnError?: boolean;
}

/** Loads by a column of a table: `SELECT ... FROM table` joined to the batch's keys. */
export interface PgLoadTableOptions<Key> extends PgLoadCoreOptions<Key> {
  /**
   * The table. A string is one identifier, used exactly as written (case-sensitive, quoted,
   * never split on dots); `{ schema, name }` for a schema-qualified table.
   */
  table: PgTable;
  /**
   * The columns each caller gets.
   * @default "*"
   */
  columns?: "*" | readonly string[];
  query?: undefined;
}

/** Loads with your own query. */
export interface PgLoadQueryOptions<Key> extends PgLoadCoreOptions<Key> {
  /**
   * SQL taking the batch's keys as one array parameter, `$1`, and returning rows with the `key`
   * column: `SELECT * FROM users WHERE id = ANY($1::int[])`. Rows are matched to callers by
   * `String(row[key])` against `String(requested key)` (see the guide).
   */
  query: string;
  table?: undefined;
  columns?: undefined;
}

/** Options of `PgLoadBatcher`: a table and key column, or a query and key column. */
export type PgLoadBatcherOptions<Key = unknown> = PgLoadTableOptions<Key> | PgLoadQueryOptions<Key>;

/** The key as compared: what pg sends for it, so equal strings mean equal parameters. */
export function keyString(key: unknown): string {
  if (typeof key === "string") return key;
  if (key instanceof Date) return Number.isNaN(key.getTime()) ? "Invalid Date" : key.toISOString();
  if (key instanceof Uint8Array) {
    let hex = "\\x";
    for (const byte of key) hex += byte.toString(16).padStart(2, "0");
    return hex;
  }
  if (typeof key === "object" && key !== null) return JSON.stringify(key);
  return String(key);
}

/** What a load needs, worked out from the table once. */
interface LoadPlan {
  readonly statement: PgStatement;
  readonly ordAlias: string;
}

const OWN_KEYS = ["pool", "table", "key", "columns", "query", "prepare"] as const;

/**
 * Batched lookups by key: `process(key)` resolves with the row whose key column equals it, or
 * `null`; every key of a batch is fetched with one query, and a key asked for twice in a batch is
 * fetched once.
 *
 * From a table, rows are matched to keys in SQL (`unnest($1::type[]) WITH ORDINALITY` joined to
 * the table), so a key matches whatever JS type it was given in (a number, a bigint or a string
 * for int8; any case of a uuid). From a `query`, rows are matched by `String(row[key])`.
 * A key that finds more than one row rejects its caller with a `RangeError`.
 *
 * ```ts
 * const users = new PgLoadBatcher<number, User>({ pool, table: "users", key: "id" });
 * const user = await users.process(42); // User | null
 * ```
 *
 * @typeParam Key - what a caller passes
 * @typeParam Row - the row it gets
 */
export class PgLoadBatcher<Key = unknown, Row = Record<string, unknown>> extends AsyncBatcher<
  Key,
  Row | null
> {
  /** The key column. */
  readonly key: string;
  readonly #pool: PgPool;
  readonly #query: string | undefined;
  readonly #prepare: boolean;
  readonly #defaults: Required<TunableDefaults>;
  readonly #plan: Lazy<LoadPlan> | undefined;
  /** The `query` form's statement. */
  #statement: PgStatement | undefined;
  /** Bumped when the server says a prepared plan went stale: names the next statements afresh. */
  #generation = 0;

  /** Checks every option (a bad one throws a `TypeError`/`RangeError` naming it). No query is sent. */
  constructor(options: PgLoadBatcherOptions<Key>) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `options must be an object with pool, key and table or query, got ${describe(options)}`,
      );
    }
    const pool = poolOption(options.pool);
    const key = identifierOption("key", options.key);
    const prepare = booleanOption("prepare", options.prepare, true);
    let query: string | undefined;
    let table: { sql: string; label: string } | undefined;
    let columns: "*" | string[] = "*";
    if (options.query !== undefined) {
      if (options.table !== undefined) {
        throw new TypeError("give table or query, not both");
      }
      if (options.columns !== undefined) {
        throw new TypeError("columns goes with table: a query selects its own columns");
      }
      if (typeof options.query !== "string" || options.query.trim() === "") {
        throw new TypeError(
          `query must be SQL taking the keys as $1, got ${describe(options.query)}`,
        );
      }
      query = options.query;
    } else {
      if (options.table === undefined) throw new TypeError("table or query is required");
      table = tableOption(options.table);
      const raw: unknown = options.columns;
      if (raw !== undefined && raw !== "*") {
        if (!Array.isArray(raw)) {
          throw new TypeError(
            `columns must be "*" or an array of column names, got ${describe(raw)}`,
          );
        }
        columns = identifierListOption("columns", raw);
      }
    }
    const core = coreOptions(
      options as unknown as Record<string, unknown>,
      OWN_KEYS,
      pool,
      "PgLoadBatcher",
    );
    super({
      ...(core.options as BatcherOptions<Key, Row | null>),
      // One item per distinct key in a batch; equal strings are equal parameters.
      keyOf: keyString as (key: Key) => unknown,
      dedupe: true,
    });
    this.key = key;
    this.#pool = pool;
    this.#query = query;
    this.#prepare = prepare;
    if (query !== undefined) this.#statement = new PgStatement(query, prepare);
    this.#defaults = core.defaults;
    if (table !== undefined) {
      const { sql, label } = table;
      this.#plan = new Lazy(() => this.#loadPlan(sql, label, columns));
    }
  }

  /**
   * Queues one key and resolves with its row, or `null` when there is none. Rejects at once,
   * alone, with `InvalidInputError` (`reason: "type"`) for a `null`, `undefined` or array key;
   * with a `RangeError` when the key finds more than one row; with the driver's error when the
   * query fails for this key (a value the key column's type cannot hold).
   */
  override process(key: Key, options?: ProcessOptions): Promise<Row | null> {
    if (key === null || key === undefined || Array.isArray(key)) {
      return Promise.reject(
        new InvalidInputError(
          "type",
          `a key must be a value of the key column, got ${describe(key)}`,
        ),
      );
    }
    return super.process(key, options);
  }

  /** As the core's, with this batcher's defaults for keys set to `undefined`. */
  override setOptions(options: TunableOptions): void {
    super.setOptions(withDefaults(options, this.#defaults));
  }

  async #loadPlan(
    table: string,
    label: string,
    columns: "*" | readonly string[],
  ): Promise<LoadPlan> {
    const info = await readTableInfo(this.#pool, table, label);
    const keyColumn = columnOf(info, this.key, "key", label);
    if (keyColumn.isArray) {
      throw new TypeError(
        `key: ${JSON.stringify(this.key)} of ${label} is ${keyColumn.type}: array keys are not supported`,
      );
    }
    if (columns !== "*") for (const name of columns) columnOf(info, name, "columns", label);
    const ordAlias = freshAlias("__ord", new Set(info.columns.keys()));
    const text = loadSql(table, this.key, keyColumn.type, columns, ordAlias);
    return { statement: new PgStatement(text, this.#prepare, this.#generation), ordAlias };
  }

  /** Loads a batch of distinct keys with one query; see the class. */
  processBatch(keys: Key[]): Promise<BatchResult<Row | null>> {
    return this.#load(keys, true);
  }

  async #load(keys: Key[], mayReplan: boolean): Promise<BatchResult<Row | null>> {
    const results: (Row | null | Error)[] = new Array(keys.length).fill(null);
    let plan: LoadPlan | undefined;
    if (this.#plan !== undefined) {
      try {
        plan = await this.#plan.get();
      } catch (error) {
        if (!(error instanceof Error)) throw error;
        return results.fill(error);
      }
    }
    let rows: Record<string, unknown>[];
    let fields: readonly { name: string }[] | undefined;
    const statement = plan?.statement ?? (this.#statement as PgStatement);
    try {
      const result = await this.#pool.query(statement.config([keys]));
      rows = result.rows;
      fields = result.fields;
    } catch (error) {
      if (mayReplan && statement.name !== undefined && isStalePlan(error)) {
        // The table changed under the prepared statement: read it again, prepare afresh.
        this.#replan(statement);
        return this.#load(keys, false);
      }
      if (isSchemaError(error)) this.#plan?.reset();
      if (isStatementLevel(error) && error instanceof Error) return results.fill(error);
      throw error; // perhaps one key's value: splitOnError finds it
    }
    const counts = new Array<number>(keys.length).fill(0);
    if (plan !== undefined) {
      const ordAlias = plan.ordAlias;
      // Each caller's row is the result's without the position column.
      const names = (fields?.map((f) => f.name) ?? Object.keys(rows[0] ?? {})).filter(
        (name) => name !== ordAlias,
      );
      for (const row of rows) {
        const i = Number(row[ordAlias]) - 1;
        if (!(i >= 0 && i < keys.length)) continue;
        counts[i] = (counts[i] as number) + 1;
        if (counts[i] !== 1) continue;
        const own: Record<string, unknown> = {};
        for (const name of names) own[name] = row[name];
        results[i] = own as Row;
      }
    } else {
      if (fields !== undefined && !fields.some((f) => f.name === this.key)) {
        const error = new TypeError(
          `query returned no ${JSON.stringify(this.key)} column (it returned ${fields.map((f) => JSON.stringify(f.name)).join(", ")}): key must name the column holding each row's key`,
        );
        return results.fill(error);
      }
      const index = new Map<string, number>();
      for (let i = 0; i < keys.length; i++) index.set(keyString(keys[i]), i);
      for (const row of rows) {
        const i = index.get(keyString(row[this.key]));
        if (i === undefined) continue;
        counts[i] = (counts[i] as number) + 1;
        if (counts[i] === 1) results[i] = row as Row;
      }
    }
    for (let i = 0; i < keys.length; i++) {
      const count = counts[i] as number;
      if (count > 1) {
        results[i] = new RangeError(
          `key ${keyString(keys[i])} found ${count} rows: PgLoadBatcher loads one row per key (the key column must be unique)`,
        );
      }
    }
    return results;
  }

  /**
   * After `statement`'s prepared plan went stale: the next statements have new names. Batches
   * that failed together move on once: a later generation is new already.
   */
  #replan(statement: PgStatement): void {
    if (statement.generation !== this.#generation) return;
    this.#generation++;
    if (this.#plan !== undefined) this.#plan.reset();
    else this.#statement = new PgStatement(statement.text, this.#prepare, this.#generation);
  }
}
