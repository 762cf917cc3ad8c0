import { createHash } from "node:crypto";
import {
  type BatcherOptions,
  describe,
  resolveOptions,
  type TunableOptions,
} from "../../options.js";
import { identifierList } from "../shared/identifiers.js";

/**
 * The few things the batchers need of a `pg` pool: `pg.Pool` fits, and so does anything with
 * the same `query(config)` (a `pg.Client`, a wrapper of yours that passes the config on). Each
 * batch runs exactly one `query()` call: no connection is held across batches, no transaction is
 * opened, and the batchers never call `end()`: the pool is yours.
 */
export interface PgPool {
  query(config: PgQueryConfig): Promise<PgQueryResult>;
}

/** A statement as the batchers send it: `pg`'s query config. */
export interface PgQueryConfig {
  text: string;
  values: unknown[];
  /**
   * Set when the statement is prepared (`prepare`, the default): each connection parses and
   * plans it once, then runs it by this name.
   */
  name?: string;
}

/** What the batchers read of a query's result. */
export interface PgQueryResult {
  rows: Record<string, unknown>[];
  /** The result's columns (`pg` gives them): the load batcher's `query` form checks the key is one. */
  fields?: readonly { name: string }[];
}

/**
 * A table: a string is ONE identifier, used exactly as written (case-sensitive, never split on
 * dots: `"app.events"` is a table named `app.events` in the `search_path`); for a
 * schema-qualified table, give `{ schema, name }`.
 */
export type PgTable = string | { readonly schema?: string; readonly name: string };

/** Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes); longer ones are truncated. */
const MAX_IDENTIFIER_BYTES = 63;

const encoder = new TextEncoder();

/** `"name"`, with every `"` doubled: safe for any name PostgreSQL accepts. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Checks one identifier from the configuration: a non-empty string, no NUL, at most 63 bytes. */
export function identifierOption(option: string, value: unknown): string {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${option} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.includes("\0")) {
    throw new TypeError(
      `${option} must not contain a NUL character: PostgreSQL identifiers cannot`,
    );
  }
  const bytes = encoder.encode(value).length;
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new RangeError(
      `${option} must be at most ${MAX_IDENTIFIER_BYTES} bytes in UTF-8 (PostgreSQL truncates longer identifiers), got ${bytes}`,
    );
  }
  return value;
}

/** A list of distinct identifiers, at least one. */
export function identifierListOption(option: string, value: unknown): string[] {
  return identifierList(option, value, identifierOption);
}

/** The table, quoted (and schema-qualified when given as `{ schema, name }`), and its name for messages. */
export function tableOption(value: unknown): { sql: string; label: string } {
  if (typeof value === "string") {
    const name = identifierOption("table", value);
    return { sql: quoteIdent(name), label: quoteIdent(name) };
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const { schema, name } = value as { schema?: unknown; name?: unknown };
    const table = identifierOption("table.name", name);
    const sql =
      schema === undefined
        ? quoteIdent(table)
        : `${quoteIdent(identifierOption("table.schema", schema))}.${quoteIdent(table)}`;
    return { sql, label: sql };
  }
  throw new TypeError(`table must be a table name or { schema, name }, got ${describe(value)}`);
}

export function poolOption(value: unknown): PgPool {
  if (
    typeof value !== "object" ||
    value === null ||
    typeof (value as { query?: unknown }).query !== "function"
  ) {
    throw new TypeError(`pool must be a pg Pool (an object with query()), got ${describe(value)}`);
  }
  return value as PgPool;
}

/** Core options a database batcher sets itself: passing them is a mistake. */
const RESERVED = ["keyOf", "dedupe", "onMissingResult", "executor", "closeExecutor"] as const;

/** The defaults of the core options that the database batchers change. */
export const PG_DEFAULTS = Object.freeze({
  maxBatchSize: 250,
  maxQueueTime: 0,
  concurrency: 4,
  splitOnError: true,
});

/** `pool.options.max` of a `pg.Pool`, when it has one. */
function poolSize(pool: PgPool): number | undefined {
  const max = (pool as { options?: { max?: unknown } }).options?.max;
  return typeof max === "number" && Number.isInteger(max) && max > 0 ? max : undefined;
}

/**
 * The core options of a database batcher: the caller's, without the batcher's own keys, with the
 * database defaults filled in. Checked by the core now, so a bad one throws at construction.
 */
export function coreOptions(
  options: Record<string, unknown>,
  ownKeys: readonly string[],
  pool: PgPool,
  className: string,
): { options: BatcherOptions<never, never>; defaults: Required<TunableDefaults> } {
  for (const key of RESERVED) {
    if (key in options && options[key] !== undefined) {
      throw new TypeError(`${key} cannot be set: ${className} sets it itself`);
    }
  }
  const core: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!ownKeys.includes(key) && value !== undefined) core[key] = value;
  }
  const defaults = {
    maxBatchSize: PG_DEFAULTS.maxBatchSize,
    maxQueueTime: PG_DEFAULTS.maxQueueTime,
    concurrency: Math.min(PG_DEFAULTS.concurrency, poolSize(pool) ?? PG_DEFAULTS.concurrency),
  };
  core.maxBatchSize ??= defaults.maxBatchSize;
  core.maxQueueTime ??= defaults.maxQueueTime;
  core.concurrency ??= defaults.concurrency;
  core.splitOnError ??= PG_DEFAULTS.splitOnError;
  core.name ??= className;
  resolveOptions(core);
  return { options: core as BatcherOptions<never, never>, defaults };
}

/** The tunable options whose defaults differ from the core's. */
export interface TunableDefaults {
  maxBatchSize?: number;
  maxQueueTime?: number;
  concurrency?: number;
}

/**
 * `setOptions()` input with `undefined` values replaced by the batcher's defaults (the core would
 * put back its own: an unbounded batch, 10 ms, one batch at a time).
 */
export function withDefaults(
  options: TunableOptions,
  defaults: Required<TunableDefaults>,
): TunableOptions {
  if (typeof options !== "object" || options === null) return options;
  const out: TunableOptions = { ...options };
  for (const key of ["maxBatchSize", "maxQueueTime", "concurrency"] as const) {
    if (key in out && out[key] === undefined) out[key] = defaults[key];
  }
  return out;
}

/** SQLSTATE classes and codes that no row can cause: splitting the batch would only repeat them. */
const STATEMENT_LEVEL = /^(08|28|3D|42|0A)|^53300$|^57P0[1-5]$/;

/**
 * Whether an error is about the statement or the connection rather than any of its rows: a
 * driver error without a SQLSTATE (the connection failed or was closed, the pool was ended), a
 * connection exception (08), an authorization or catalog error (28, 3D), a syntax or access
 * error (42: a column dropped since the batcher read the table, a missing privilege), a feature
 * not supported (0A), too many connections, or a server shutting down. These reject every caller
 * of the batch at once instead of being split: halves would fail the same way, one round trip
 * each (and, for a connection that dropped after COMMIT, insert twice).
 */
export function isStatementLevel(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return STATEMENT_LEVEL.test(code);
}

/**
 * A statement of fixed text that a batcher runs again and again, prepared by name on each
 * connection when `prepare` is on: the server parses and plans it once per connection instead of
 * once per batch. The name is derived from the text, so batchers running the same statement
 * share it, and one name never stands for two texts. `generation` is part of the name: after the
 * server says a prepared plan no longer fits its table (`isStalePlan`), the batcher moves to the
 * next generation, a name no connection has prepared yet.
 */
export class PgStatement {
  readonly text: string;
  /** The name it is prepared under, or `undefined` when it is not prepared. */
  readonly name: string | undefined;
  readonly generation: number;

  constructor(text: string, prepare: boolean, generation = 0) {
    this.text = text;
    this.generation = generation;
    // At most 63 bytes (NAMEDATALEN): "async_batcher_", 40 hex digits, "_" and the generation.
    this.name = prepare
      ? `async_batcher_${createHash("sha1").update(text).digest("hex")}_${generation}`
      : undefined;
  }

  /** The query config that runs it with `values`. */
  config(values: unknown[]): PgQueryConfig {
    return this.name === undefined
      ? { text: this.text, values }
      : { name: this.name, text: this.text, values };
  }
}

/**
 * Whether a prepared statement failed only because its plan, made before its table changed, no
 * longer fits it (SQLSTATE 0A000, "cached plan must not change result type": a column was added
 * to a `*`, or changed type). The server checks this before running anything, so the statement
 * can be run again, prepared afresh under a new name.
 */
export function isStalePlan(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return (
    e?.code === "0A000" &&
    typeof e.message === "string" &&
    e.message.includes("cached plan must not change result type")
  );
}

/** Whether the error says the table's shape may have changed since it was read (class 42). */
export function isSchemaError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("42");
}

/**
 * The first name of `base`, `base_2`, `base_3`, ... that is none of `taken`: for the columns the
 * batchers add to a result (the caller's position), which must not hide a column of the table.
 */
export function freshAlias(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) {
    const name = `${base}_${i}`;
    if (!taken.has(name)) return name;
  }
}
