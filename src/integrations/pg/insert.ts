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
import { type ColumnInfo, columnOf, readTableInfo, type TableInfo } from "./catalog.js";
import {
  coreOptions,
  freshAlias,
  identifierListOption,
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
import {
  type ConflictSpec,
  type InsertSpec,
  type InsertStatement,
  insertSql,
  maxRowsPerStatement,
  type RowMatch,
} from "./sql.js";

/**
 * A column name: one of the row type's keys (suggested by editors), or any string. Never used to
 * infer `Row` (rows may leave columns out).
 */
// `[T][T extends unknown ? 0 : never]` is `NoInfer<T>` for TypeScript before 5.4.
export type PgColumnName<Row> = [Extract<keyof Row, string> | (string & {})][Row extends unknown
  ? 0
  : never];

/**
 * `ON CONFLICT (target) DO NOTHING`, or `DO UPDATE SET c = EXCLUDED.c` for each column of `set`.
 * `target` names columns of a unique index or constraint (or the primary key), all of them among
 * `columns`.
 */
export type PgOnConflict<Row = Record<string, unknown>> =
  | {
      readonly target: readonly PgColumnName<Row>[];
      readonly action: "nothing";
    }
  | {
      readonly target: readonly PgColumnName<Row>[];
      readonly action: "update";
      /**
       * The columns an upsert overwrites with the new row's values, all among `columns`.
       * @default every column of `columns` not in `target`
       */
      readonly set?: readonly PgColumnName<Row>[];
    };

/**
 * What a caller of `PgInsertBatcher` gets: nothing without `returning`; with it, its own row, or
 * `null` when no row came back for it (`onConflict` `"nothing"` skipped it).
 */
// biome-ignore lint/suspicious/noConfusingVoidType: without returning, callers await Promise<void>
export type PgInsertResult<Returned> = [Returned] extends [void] ? void : Returned | null;

/** Options of `PgInsertBatcher`: the table's, and the core batcher options. */
export interface PgInsertBatcherOptions<Row extends object = Record<string, unknown>>
  extends Omit<
    BatcherOptions<Row>,
    "keyOf" | "dedupe" | "onMissingResult" | "executor" | "closeExecutor"
  > {
  /** A `pg.Pool` (or anything with its `query(config)`). Never closed by the batcher. */
  pool: PgPool;
  /**
   * Runs the statement as a prepared statement: each connection parses and plans it once, not
   * once per batch. (Not for a table with a column of an array type: its statements have one
   * text per row count, and run unprepared.) Set `false` behind a pooler that cannot keep
   * prepared statements (PgBouncer in transaction mode before 1.21, or with
   * `max_prepared_statements = 0`).
   * @default true
   */
  prepare?: boolean;
  /**
   * The table. A string is one identifier, used exactly as written (case-sensitive, quoted,
   * never split on dots); `{ schema, name }` for a schema-qualified table.
   */
  table: PgTable;
  /**
   * The columns inserted, exactly as named in the table (case-sensitive). A row may leave some
   * out (they insert NULL, not the column's default); a row field not listed here rejects that
   * caller with `InvalidInputError` (`reason: "column"`).
   */
  columns: readonly PgColumnName<Row>[];
  /**
   * Columns of the inserted row each caller gets back (ids, defaults), or `"*"` for all of them.
   * Matched to each caller by key, not by order (see the guide): needs the primary key (or
   * `onConflict.target`) among `columns`, or a single-column primary key with a default
   * (serial, identity, `gen_random_uuid()`, ...).
   * @default undefined (callers resolve with `undefined`)
   */
  returning?: "*" | readonly string[];
  /**
   * `ON CONFLICT (target) DO NOTHING` or `DO UPDATE`. Rows of one batch with the same target
   * values are inserted once: the last one's values with `"update"`, the first one with
   * `"nothing"` (see the guide).
   * @default undefined (a conflict is an error: 23505 rejects that caller)
   */
  onConflict?: PgOnConflict<Row>;
  /**
   * Most rows in one batch (one statement). When a column is of an array type, at most
   * 65,535 ÷ columns rows (the protocol's parameter limit): the batcher lowers it itself.
   * @default 250
   */
  maxBatchSize?: number;
  /**
   * Most milliseconds the oldest row waits for others before its batch is sent.
   * `0`: none; rows that arrive together go together, and batches grow while every
   * `concurrency` slot is busy.
   * @default 0
   */
  maxQueueTime?: number;
  /**
   * Most statements running at once: keep it at most the pool's size.
   * @default 4, or the pool's `options.max` when smaller
   */
  concurrency?: number;
  /**
   * A statement that fails is tried again in halves, recursively, so that only the rows that fail
   * on their own reject (each with the driver's error) and every other row is inserted.
   * @default true
   */
  splitOnError?: boolean;
}

/** Everything a batch needs, worked out from the table once. */
interface InsertPlan {
  readonly spec: InsertSpec;
  /** Per configured column: an array type (JS arrays allowed) / json (JS values stringified). */
  readonly arrays: readonly boolean[];
  readonly json: readonly boolean[];
  readonly types: readonly string[];
  readonly maxRows: number;
  /** The statement, for the `unnest` form: the same text for every batch. */
  readonly statement: InsertStatement | undefined;
  /** That statement, prepared (or not: `prepare`). */
  readonly prepared: PgStatement | undefined;
  /** The result columns the batcher added, removed from each caller's row. */
  readonly aliases: ReadonlySet<string>;
}

const OWN_KEYS = ["pool", "table", "columns", "returning", "onConflict", "prepare"] as const;

function returningOption(value: unknown): "*" | string[] | undefined {
  if (value === undefined || value === "*") return value;
  if (!Array.isArray(value)) {
    throw new TypeError(
      `returning must be "*" or an array of column names, got ${describe(value)}`,
    );
  }
  return identifierListOption("returning", value);
}

function conflictOption(value: unknown, columns: readonly string[]): ConflictSpec | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `onConflict must be { target, action: "nothing" | "update", set? }, got ${describe(value)}`,
    );
  }
  const { target, action, set } = value as { target?: unknown; action?: unknown; set?: unknown };
  const targets = identifierListOption("onConflict.target", target);
  for (const name of targets) {
    if (!columns.includes(name)) {
      throw new TypeError(
        `onConflict.target: ${JSON.stringify(name)} is not one of columns: the conflict target must be inserted`,
      );
    }
  }
  if (action === "nothing") {
    if (set !== undefined) throw new TypeError('onConflict.set goes with action "update" only');
    return { target: targets, action };
  }
  if (action !== "update") {
    throw new TypeError(`onConflict.action must be "nothing" or "update", got ${describe(action)}`);
  }
  let columnsSet: string[];
  if (set === undefined) {
    columnsSet = columns.filter((c) => !targets.includes(c));
    if (columnsSet.length === 0) {
      throw new TypeError(
        'onConflict: every column is in target, so "update" has nothing to set: use action "nothing", or name the columns in set',
      );
    }
  } else {
    columnsSet = identifierListOption("onConflict.set", set);
    for (const name of columnsSet) {
      if (!columns.includes(name)) {
        throw new TypeError(
          `onConflict.set: ${JSON.stringify(name)} is not one of columns: an upsert sets inserted values only`,
        );
      }
    }
  }
  return { target: targets, action, set: columnsSet };
}

/**
 * Batched INSERTs into one PostgreSQL table: `process(row)` inserts one row, and every row of a
 * batch goes in one statement (`INSERT ... SELECT ... FROM unnest($1::type[], ...)`).
 *
 * With `returning`, each caller gets its own inserted row, matched to it by key in SQL (never by
 * the order of RETURNING). With `splitOnError` (the default), a row that fails (a unique
 * violation, a check constraint, a bad value) rejects its own caller with the driver's error
 * (`code` is the SQLSTATE) and the other rows are inserted.
 *
 * ```ts
 * const events = new PgInsertBatcher<Event, { id: string }>({
 *   pool, table: "events", columns: ["user_id", "kind", "payload"], returning: ["id"],
 * });
 * const { id } = (await events.process({ user_id: 1, kind: "login", payload: {} }))!;
 * ```
 *
 * @typeParam Row - what a caller passes: an object keyed by column name
 * @typeParam Returned - the row a caller gets back with `returning` (`void` without)
 */
export class PgInsertBatcher<
  Row extends object = Record<string, unknown>,
  Returned = void,
> extends AsyncBatcher<Row, PgInsertResult<Returned>> {
  /** The table, as quoted in the statements. */
  readonly table: string;
  /** The columns inserted, in the statements' order. */
  readonly columns: readonly string[];
  readonly #pool: PgPool;
  readonly #columnSet: ReadonlySet<string>;
  readonly #returning: "*" | readonly string[] | undefined;
  readonly #conflict: ConflictSpec | undefined;
  readonly #prepare: boolean;
  readonly #defaults: Required<TunableDefaults>;
  readonly #plan: Lazy<InsertPlan>;
  /** Bumped when the server says a prepared plan went stale: names the next statement afresh. */
  #generation = 0;
  /** The `maxBatchSize` in force, as far as this class knows (it caps it for the VALUES form). */
  #maxBatchSize: number;
  /** Most rows per statement once the table is known (the VALUES form's parameter limit). */
  #maxRows = Number.POSITIVE_INFINITY;

  /** Checks every option (a bad one throws a `TypeError`/`RangeError` naming it). No query is sent. */
  constructor(options: PgInsertBatcherOptions<Row>) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `options must be an object with pool, table and columns, got ${describe(options)}`,
      );
    }
    const pool = poolOption(options.pool);
    const table = tableOption(options.table);
    const columns = identifierListOption("columns", options.columns);
    const returning = returningOption(options.returning);
    const conflict = conflictOption(options.onConflict, columns);
    const prepare = booleanOption("prepare", options.prepare, true);
    const core = coreOptions(
      options as unknown as Record<string, unknown>,
      OWN_KEYS,
      pool,
      "PgInsertBatcher",
    );
    super(core.options as BatcherOptions<Row, PgInsertResult<Returned>>);
    this.table = table.sql;
    this.columns = columns;
    this.#pool = pool;
    this.#columnSet = new Set(columns);
    this.#returning = returning;
    this.#conflict = conflict;
    this.#prepare = prepare;
    this.#defaults = core.defaults;
    this.#maxBatchSize = core.options.maxBatchSize as number;
    this.#plan = new Lazy(() => this.#loadPlan(table.label));
  }

  /**
   * Queues one row and resolves once its batch's statement has committed: with `undefined`, or
   * with `returning`, its inserted row (`null` if `onConflict` skipped it). Rejects, alone and
   * without reaching the database, with `InvalidInputError` when the row is not an object
   * (`reason: "type"`), has a field that is not one of `columns` (`"column"`), or, with
   * `returning` and `onConflict`, has no value in a target column (`"value"`). Rejects with the
   * driver's error when its row fails (`code` is the SQLSTATE).
   */
  override process(row: Row, options?: ProcessOptions): Promise<PgInsertResult<Returned>> {
    const invalid = this.#check(row);
    if (invalid !== undefined) return Promise.reject(invalid);
    return super.process(row, options);
  }

  /**
   * As the core's, with this batcher's defaults for keys set to `undefined`, and `maxBatchSize`
   * kept within the parameter limit when the table needs the VALUES form.
   */
  override setOptions(options: TunableOptions): void {
    const next = withDefaults(options, this.#defaults);
    if (typeof next === "object" && next !== null && typeof next.maxBatchSize === "number") {
      next.maxBatchSize = Math.min(next.maxBatchSize, this.#maxRows);
    }
    super.setOptions(next);
    if (typeof next?.maxBatchSize === "number") this.#maxBatchSize = next.maxBatchSize;
  }

  #check(row: unknown): InvalidInputError | undefined {
    if (typeof row !== "object" || row === null || Array.isArray(row)) {
      return new InvalidInputError(
        "type",
        `a row must be an object keyed by column name, got ${describe(row)}`,
      );
    }
    for (const key of Object.keys(row)) {
      if (!this.#columnSet.has(key)) {
        return new InvalidInputError(
          "column",
          `row field ${JSON.stringify(key)} is not one of the columns (${this.columns.map((c) => JSON.stringify(c)).join(", ")})`,
        );
      }
    }
    if (this.#returning !== undefined && this.#conflict !== undefined) {
      // Rows are matched back on the target: a NULL there never conflicts and never matches.
      for (const name of this.#conflict.target) {
        if ((row as Record<string, unknown>)[name] == null) {
          return new InvalidInputError(
            "value",
            `column ${JSON.stringify(name)} of onConflict.target must have a value: with returning, rows are matched to callers on it`,
          );
        }
      }
    }
    return undefined;
  }

  async #loadPlan(label: string): Promise<InsertPlan> {
    const info = await readTableInfo(this.#pool, this.table, label);
    const columns = this.columns.map((name) => columnOf(info, name, "columns", label));
    for (const column of columns) {
      if (column.generated !== "") {
        throw new TypeError(
          `columns: ${JSON.stringify(column.name)} is a generated column of ${label}: it cannot be inserted`,
        );
      }
      if (column.identity === "a") {
        throw new TypeError(
          `columns: ${JSON.stringify(column.name)} of ${label} is GENERATED ALWAYS AS IDENTITY: leave it out of columns`,
        );
      }
    }
    const returning = this.#returning;
    if (Array.isArray(returning)) {
      for (const name of returning) columnOf(info, name, "returning", label);
    }
    const taken = new Set(info.columns.keys());
    let returningSpec: InsertSpec["returning"];
    const aliases = new Set<string>();
    if (returning !== undefined) {
      const match = this.#match(info, label);
      const ordAlias = freshAlias("__ord", taken);
      taken.add(ordAlias);
      const keyCount = match.kind === "generated" ? 1 : match.columns.length;
      const keyAliases: string[] = [];
      for (let j = 0; j < keyCount; j++) {
        const alias = freshAlias(`__key${j + 1}`, taken);
        taken.add(alias);
        keyAliases.push(alias);
      }
      returningSpec = { columns: returning, match, ordAlias, keyAliases };
      aliases.add(ordAlias);
      for (const alias of keyAliases) aliases.add(alias);
    }
    const spec: InsertSpec = {
      table: this.table,
      columns: this.columns,
      types: columns.map((c) => c.type),
      // unnest flattens arrays: a column of an array type needs one parameter per value.
      form: columns.some((c) => c.isArray) ? "values" : "unnest",
      conflict: this.#conflict,
      returning: returningSpec,
    };
    const maxRows = maxRowsPerStatement(spec);
    this.#maxRows = maxRows;
    if (this.#maxBatchSize > maxRows) this.setOptions({ maxBatchSize: maxRows });
    const statement = spec.form === "unnest" ? insertSql(spec, 0) : undefined;
    return {
      spec,
      arrays: columns.map((c) => c.isArray),
      json: columns.map((c) => c.isJson),
      types: spec.types,
      maxRows,
      statement,
      prepared:
        statement === undefined
          ? undefined
          : new PgStatement(statement.text, this.#prepare, this.#generation),
      aliases,
    };
  }

  /** How returned rows find their callers, or the configuration error that says why they cannot. */
  #match(info: TableInfo, label: string): RowMatch {
    if (this.#conflict !== undefined) return { kind: "columns", columns: this.#conflict.target };
    const pk = info.primaryKey;
    if (pk.length > 0 && pk.every((c) => this.#columnSet.has(c))) {
      return { kind: "columns", columns: pk };
    }
    if (pk.length === 1) {
      const column = info.columns.get(pk[0] as string) as ColumnInfo;
      if (column.identity !== "" && column.sequence !== null) {
        return {
          kind: "generated",
          column: column.name,
          value: { sequence: column.sequence },
          overriding: column.identity === "a",
        };
      }
      if (column.defaultExpr !== null) {
        return {
          kind: "generated",
          column: column.name,
          value: { expression: column.defaultExpr },
          overriding: false,
        };
      }
    }
    const why =
      pk.length === 0
        ? "it has no primary key"
        : `its primary key (${pk.map((c) => JSON.stringify(c)).join(", ")}) is not among columns and is not one column with a default (serial, identity, ...)`;
    throw new TypeError(
      `returning needs a way to match each inserted row to its caller, and ${label} offers none: ${why}. Include the primary key in columns, or use onConflict (its target is matched on)`,
    );
  }

  /** Inserts a batch with one statement; see the class. */
  processBatch(batch: Row[]): Promise<BatchResult<PgInsertResult<Returned>>> {
    return this.#insert(batch, true);
  }

  async #insert(batch: Row[], mayReplan: boolean): Promise<BatchResult<PgInsertResult<Returned>>> {
    const results: unknown[] = new Array(batch.length).fill(
      this.#returning === undefined ? undefined : null,
    );
    let plan: InsertPlan;
    try {
      plan = await this.#plan.get();
    } catch (error) {
      // The table could not be read, or does not fit the configuration: the same for every row,
      // so not split. The next batch reads it again.
      if (!(error instanceof Error)) throw error;
      return results.fill(error) as Error[];
    }
    const n = this.columns.length;
    const included: number[] = [];
    const values: unknown[][] = [];
    for (let i = 0; i < batch.length; i++) {
      const row = batch[i] as Record<string, unknown>;
      const tuple: unknown[] = new Array(n);
      try {
        for (let j = 0; j < n; j++) tuple[j] = this.#value(plan, j, row[this.columns[j] as string]);
      } catch (error) {
        results[i] = error instanceof Error ? error : new TypeError(String(error));
        continue;
      }
      included.push(i);
      values.push(tuple);
    }
    const rows = included.length;
    if (rows === 0) return results as BatchResult<PgInsertResult<Returned>>;
    if (rows > plan.maxRows) {
      // Only a batch cut before the table was read (with maxBatchSize above the cap, now
      // lowered) gets here: splitOnError halves it before anything is sent.
      throw new RangeError(
        `a batch of ${rows} rows needs ${rows * n} parameters with a column of an array type, more than PostgreSQL's 65,535: maxBatchSize is now ${plan.maxRows}`,
      );
    }
    const statement = plan.statement ?? insertSql(plan.spec, rows);
    const params: unknown[] = [];
    if (plan.spec.form === "unnest") {
      for (let j = 0; j < n; j++) {
        const column = new Array(rows);
        for (let r = 0; r < rows; r++) column[r] = (values[r] as unknown[])[j];
        params.push(column);
      }
    } else {
      for (const tuple of values) for (const value of tuple) params.push(value);
    }
    for (const extra of statement.extraParams) params.push(extra);
    let result: Awaited<ReturnType<PgPool["query"]>>;
    try {
      result = await this.#pool.query(
        plan.prepared?.config(params) ?? { text: statement.text, values: params },
      );
    } catch (error) {
      if (mayReplan && plan.prepared?.name !== undefined && isStalePlan(error)) {
        // The table changed under the prepared statement (nothing was inserted): read it again,
        // prepare afresh under a new name (once for the batches that failed together).
        if (plan.prepared.generation === this.#generation) {
          this.#generation++;
          this.#plan.reset();
        }
        return this.#insert(batch, false);
      }
      if (isSchemaError(error)) this.#plan.reset();
      if (isStatementLevel(error) && error instanceof Error) {
        for (const i of included) results[i] = error;
        return results as BatchResult<PgInsertResult<Returned>>;
      }
      throw error; // about a row: splitOnError finds it
    }
    const returning = plan.spec.returning;
    if (returning !== undefined) {
      const ordAlias = returning.ordAlias;
      for (const row of result.rows) {
        const index = included[Number(row[ordAlias]) - 1];
        // Keys are unique in the table, so one row per caller; the first stands if not.
        if (index === undefined || results[index] !== null) continue;
        const own: Record<string, unknown> = {};
        for (const key of Object.keys(row)) if (!plan.aliases.has(key)) own[key] = row[key];
        results[index] = own;
      }
    }
    return results as BatchResult<PgInsertResult<Returned>>;
  }

  /** Column `j`'s value of a row, as sent: NULL for a missing field, JSON text for json. */
  #value(plan: InsertPlan, j: number, value: unknown): unknown {
    if (value === undefined || value === null) return null;
    if (plan.json[j]) {
      // pg would send a JS array as a PostgreSQL array literal, not JSON; a string is sent as
      // it is (JSON text), like pg does.
      if (typeof value === "string") return value;
      return JSON.stringify(value) ?? null;
    }
    if (Array.isArray(value) && !plan.arrays[j]) {
      // With unnest, an array in a scalar column would be flattened into several rows.
      throw new InvalidInputError(
        "type",
        `column ${JSON.stringify(this.columns[j])} is ${plan.types[j]}: an array is accepted only in array and json columns`,
      );
    }
    return value;
  }
}
