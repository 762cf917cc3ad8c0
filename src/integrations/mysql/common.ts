import type { Buffer } from "node:buffer";
import {
  type BatcherOptions,
  describe,
  resolveOptions,
  type TunableOptions,
} from "../../options.js";
import { identifierList } from "../shared/identifiers.js";

/** What the batchers pass to `execute()`: the SQL, and the shape of the rows they read back. */
export interface MysqlStatement {
  /** Backticked identifiers from the configuration and `?` placeholders: never a value. */
  readonly sql: string;
  /**
   * mysql2's `nestTables`: the load batcher reads each row as `{ k: { o }, t: { ...columns } }`.
   * @default the pool's
   */
  readonly nestTables?: boolean;
  /**
   * mysql2's `rowsAsArray`: the load batcher turns it off, whatever the pool says.
   * @default the pool's
   */
  readonly rowsAsArray?: boolean;
}

/**
 * A value as the batchers send it (see `toParameter`): one field of the execute packet.
 */
export type MysqlValue = string | number | boolean | Date | Buffer | null;

/**
 * The few things the batchers need of a connection checked out of a `mysql2/promise` pool:
 * `execute()` (a server-side prepared statement: values travel apart from the SQL, in the
 * binary protocol), `unprepare()` (closes that statement on the server) and `release()`.
 */
export interface MysqlConnection {
  execute(statement: MysqlStatement, values: MysqlValue[]): Promise<readonly [unknown, unknown]>;
  unprepare(statement: MysqlStatement): unknown;
  release(): void;
}

/**
 * A `mysql2/promise` pool (`mysql.createPool(...)`), pool cluster or pool namespace: anything
 * with `getConnection()`. Each batch checks one connection out, runs one statement on it and
 * releases it: no connection is held across batches, no transaction is opened, and the batchers
 * never call `end()`: the pool is yours.
 */
export interface MysqlPool {
  getConnection(): Promise<MysqlConnection>;
}

/**
 * A table: a string is ONE identifier, used exactly as written (quoted, never split on dots:
 * `"app.events"` is a table named `app.events` in the connection's database); for a table in
 * another database, give `{ schema, name }` (`schema` is the database).
 */
export type MysqlTable = string | { readonly schema?: string; readonly name: string };

/**
 * Most placeholders in one prepared statement: the protocol counts them in 2 bytes
 * (`ER_PS_MANY_PARAM` beyond).
 */
export const MAX_PLACEHOLDERS = 65_535;

/** Longest name of a table, column or database, in characters. */
const MAX_IDENTIFIER_LENGTH = 64;

/** `` `name` ``, with every backtick doubled: safe for any name MySQL and MariaDB accept. */
export function quoteId(name: string): string {
  return `\`${name.replaceAll("`", "``")}\``;
}

/**
 * Checks one identifier from the configuration: a non-empty string of at most 64 characters,
 * without NUL, without characters beyond U+FFFF (identifiers are stored in 3-byte utf8: MariaDB
 * rejects an emoji with `ER_INVALID_CHARACTER_STRING`, MySQL with a syntax error), not ending
 * with a space (the server refuses such table and column names).
 */
export function identifierOption(option: string, value: unknown): string {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${option} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.includes("\0")) {
    throw new TypeError(`${option} must not contain a NUL character: MySQL identifiers cannot`);
  }
  let length = 0;
  for (const char of value) {
    if ((char.codePointAt(0) as number) > 0xffff) {
      throw new TypeError(
        `${option} must not contain characters beyond U+FFFF (such as emoji): MySQL and MariaDB identifiers cannot, got ${JSON.stringify(char)}`,
      );
    }
    length++;
  }
  if (length > MAX_IDENTIFIER_LENGTH) {
    throw new RangeError(
      `${option} must be at most ${MAX_IDENTIFIER_LENGTH} characters (MySQL's limit), got ${length}`,
    );
  }
  if (value.endsWith(" ")) {
    throw new TypeError(`${option} must not end with a space: MySQL names cannot`);
  }
  return value;
}

/**
 * A list of distinct identifiers, at least one. Column names are case-insensitive in MySQL, so
 * `"a"` and `"A"` are the same column: refused as a duplicate.
 */
export function identifierListOption(option: string, value: unknown): string[] {
  return identifierList(
    option,
    value,
    identifierOption,
    (name) => name.toLowerCase(),
    " (column names are case-insensitive)",
  );
}

/** The table, resolved: its quoted SQL, and its parts for the catalog. */
export interface TableSpec {
  /** `` `name` `` or `` `schema`.`name` ``. */
  readonly sql: string;
  readonly schema: string | undefined;
  readonly name: string;
}

export function tableOption(value: unknown): TableSpec {
  if (typeof value === "string") {
    const name = identifierOption("table", value);
    return { sql: quoteId(name), schema: undefined, name };
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const { schema, name } = value as { schema?: unknown; name?: unknown };
    const table = identifierOption("table.name", name);
    if (schema === undefined) return { sql: quoteId(table), schema: undefined, name: table };
    const database = identifierOption("table.schema", schema);
    return { sql: `${quoteId(database)}.${quoteId(table)}`, schema: database, name: table };
  }
  throw new TypeError(`table must be a table name or { schema, name }, got ${describe(value)}`);
}

export function poolOption(value: unknown): MysqlPool {
  if (
    typeof value !== "object" ||
    value === null ||
    typeof (value as { getConnection?: unknown }).getConnection !== "function"
  ) {
    throw new TypeError(
      `pool must be a mysql2/promise Pool (an object with getConnection()), got ${describe(value)}`,
    );
  }
  return value as MysqlPool;
}

/**
 * `max_allowed_packet` given by the user: an integer from 1,024 (the server's minimum) to 1 GiB
 * (its maximum).
 */
export function packetOption(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number") {
    throw new TypeError(`maxAllowedPacket must be a number of bytes, got ${describe(value)}`);
  }
  if (!Number.isInteger(value) || value < 1024 || value > 1_073_741_824) {
    throw new RangeError(
      `maxAllowedPacket must be an integer from 1024 to 1073741824 (bytes), got ${describe(value)}`,
    );
  }
  return value;
}

/** Core options a database batcher sets itself: passing them is a mistake. */
const RESERVED = [
  "keyOf",
  "dedupe",
  "onMissingResult",
  "executor",
  "closeExecutor",
  "weigh",
] as const;

/** The defaults of the core options that the MySQL batchers change. */
export const MYSQL_DEFAULTS = Object.freeze({
  maxBatchSize: 250,
  maxQueueTime: 0,
  concurrency: 4,
  splitOnError: true,
});

/** `connectionLimit` of a `mysql2/promise` pool (kept at `pool.pool.config`), when it has one. */
function poolSize(pool: MysqlPool): number | undefined {
  const config = (pool as { pool?: { config?: { connectionLimit?: unknown } } }).pool?.config;
  const limit = config?.connectionLimit;
  return typeof limit === "number" && Number.isInteger(limit) && limit > 0 ? limit : undefined;
}

/** The tunable options whose defaults differ from the core's, and the batcher's caps. */
export interface Tunables {
  /** The default `maxBatchSize` (250, or the placeholder cap when lower). */
  readonly maxBatchSize: number;
  readonly maxQueueTime: number;
  readonly concurrency: number;
}

/**
 * The core options of a MySQL batcher: the caller's, without the batcher's own keys, with the
 * database defaults filled in, the batcher's `weigh` (the statement's bytes), and `maxBatchSize`
 * capped at `maxRows`. Checked by the core now, so a bad one throws at construction.
 */
export function coreOptions(
  options: Record<string, unknown>,
  ownKeys: readonly string[],
  pool: MysqlPool,
  className: string,
  maxRows: number,
  weigh: (item: never) => number,
): { core: Record<string, unknown>; defaults: Tunables } {
  for (const key of RESERVED) {
    if (key in options && options[key] !== undefined) {
      throw new TypeError(`${key} cannot be set: ${className} sets it itself`);
    }
  }
  const core: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!ownKeys.includes(key) && value !== undefined) core[key] = value;
  }
  const defaults: Tunables = {
    maxBatchSize: Math.min(MYSQL_DEFAULTS.maxBatchSize, maxRows),
    maxQueueTime: MYSQL_DEFAULTS.maxQueueTime,
    concurrency: Math.min(MYSQL_DEFAULTS.concurrency, poolSize(pool) ?? MYSQL_DEFAULTS.concurrency),
  };
  core.maxBatchSize ??= defaults.maxBatchSize;
  core.maxQueueTime ??= defaults.maxQueueTime;
  core.concurrency ??= defaults.concurrency;
  core.splitOnError ??= MYSQL_DEFAULTS.splitOnError;
  core.name ??= className;
  core.weigh = weigh;
  // Checked before capping, so that a bad value is reported as given.
  resolveOptions(core as BatcherOptions);
  core.maxBatchSize = Math.min(core.maxBatchSize as number, maxRows);
  withPacketRetry(core);
  return { core, defaults };
}

/**
 * `setOptions()` input for the core: `undefined` values replaced by the batcher's defaults (the
 * core would put back its own: an unbounded batch, 10 ms, one batch at a time), `maxBatchSize`
 * capped at `maxRows` and `maxBatchWeight` at `maxWeight` (the statement limits).
 */
export function tunedOptions(
  options: TunableOptions,
  defaults: Tunables,
  maxRows: number,
  maxWeight: number,
): TunableOptions {
  if (typeof options !== "object" || options === null) return options;
  const out: TunableOptions = { ...options };
  for (const key of ["maxBatchSize", "maxQueueTime", "concurrency"] as const) {
    if (key in out && out[key] === undefined) out[key] = defaults[key];
  }
  if (typeof out.maxBatchSize === "number" && out.maxBatchSize > maxRows) {
    out.maxBatchSize = maxRows;
  }
  if ("maxBatchWeight" in out) {
    const weight = out.maxBatchWeight;
    if (weight === undefined) out.maxBatchWeight = maxWeight;
    else if (typeof weight === "number" && weight > maxWeight) out.maxBatchWeight = maxWeight;
  }
  return out;
}

/**
 * MySQL error numbers that no row can cause: splitting the batch would only repeat them.
 * 1040 too many connections, 1044/1045/1142/1143 access denied, 1046 no database, 1049 unknown
 * database, 1053 server shutdown, 1054 unknown column, 1064 syntax, 1146 no such table,
 * 1290 read-only (`--read-only`), 1317 query interrupted (KILL QUERY), 1390 too many
 * placeholders.
 */
const STATEMENT_ERRNOS = new Set([
  1040, 1044, 1045, 1046, 1049, 1053, 1054, 1064, 1142, 1143, 1146, 1290, 1317, 1390,
]);

/** `ER_NET_PACKET_TOO_LARGE`: in class 08 (connection), but halves of the batch do fit. */
const PACKET_TOO_LARGE = 1153;

/**
 * Whether an error is about the statement or the connection rather than any of its rows: a
 * driver error without a server error number (connection refused or lost, the pool was closed),
 * a fatal one, a SQLSTATE of class 08 (connection), 28 (authorization), 42 (syntax, access,
 * unknown table or column), 3D (no database) or 0A (not supported), or one of
 * `STATEMENT_ERRNOS`. These reject every caller of the batch at once instead of being split:
 * halves would fail the same way, one round trip each.
 */
export function isStatementLevel(error: unknown): boolean {
  const { errno, sqlState, fatal } = (error ?? {}) as {
    errno?: unknown;
    sqlState?: unknown;
    fatal?: unknown;
  };
  if (errno === PACKET_TOO_LARGE) return false;
  if (typeof errno !== "number" || fatal === true) return true;
  if (STATEMENT_ERRNOS.has(errno)) return true;
  return typeof sqlState === "string" && /^(08|28|42|3D|0A)/.test(sqlState);
}

/**
 * A batch cut before the server's `max_allowed_packet` was known, too large for it: thrown by
 * the batch function (before any round trip) so that `splitOnError` tries it in halves. Never
 * retried (see `withPacketRetry`). It reaches callers only with `splitOnError: false`.
 */
export class PacketSplitError extends RangeError {
  override name = "PacketSplitError";
}

/**
 * The core's `retry` option with a `retryIf` that never retries a `PacketSplitError` (the same
 * batch would not fit any better) and otherwise asks the caller's.
 */
export function withPacketRetry(core: Record<string, unknown>): void {
  const retry = core.retry as { retryIf?: (error: unknown) => boolean } | undefined;
  if (retry === undefined) return;
  const retryIf = retry.retryIf;
  core.retry = {
    ...retry,
    retryIf: (error: unknown) =>
      !(error instanceof PacketSplitError) && (retryIf === undefined || retryIf(error) === true),
  };
}

/** How many SQL texts of statements no longer kept are remembered for closing (see `Statements`). */
const RETIRED_KEPT = 16;

/**
 * Runs statements on connections checked out of the pool, one per call, and decides which
 * prepared statements stay open on the server.
 *
 * `execute()` prepares a statement per distinct SQL text and mysql2 keeps it open on that
 * connection (up to `maxPreparedStatements`, 16,000 by default). A multi-row INSERT has a text
 * per row count, and each prepared statement holds server memory (about 4.8 MB for 1,000 rows
 * of 10 columns on MariaDB 10.11; `max_prepared_stmt_count` is 16,382 for the whole server): so
 * a batcher says which statements to keep for reuse (the insert batcher's of a full batch and of
 * batches of up to 8 rows, the load batcher's of its padded sizes), and every other one is
 * closed after its single use. A statement no longer kept (`maxBatchSize` changed) is retired:
 * closed on each connection as it is next checked out.
 */
export class Statements {
  readonly #pool: MysqlPool;
  readonly #keep: boolean;
  #retired: MysqlStatement[] = [];

  constructor(pool: MysqlPool, keep: boolean) {
    this.#pool = pool;
    this.#keep = keep;
  }

  /** A statement no longer kept: close it wherever it is open. */
  retire(statement: MysqlStatement): void {
    this.#retired.push(statement);
    if (this.#retired.length > RETIRED_KEPT) this.#retired.shift();
  }

  /**
   * Runs `statement` with `values` on a connection of its own; `keep` keeps the prepared
   * statement open for the next batch of its shape (unless `keepPrepared` is off). The connection
   * is always released.
   */
  async run(statement: MysqlStatement, values: MysqlValue[], keep: boolean): Promise<unknown> {
    const kept = keep && this.#keep;
    if (kept && this.#retired.length > 0) {
      // Its text is in use again (maxBatchSize went back): no longer to be closed.
      this.#retired = this.#retired.filter((retired) => retired.sql !== statement.sql);
    }
    const connection = await this.#pool.getConnection();
    try {
      // A local no-op on a connection that never prepared them.
      for (const retired of this.#retired) unprepare(connection, retired);
      const [result] = await connection.execute(statement, values);
      return result;
    } finally {
      if (!kept) unprepare(connection, statement);
      connection.release();
    }
  }
}

/** Closes a prepared statement; on a connection that is gone, the statement went with it. */
function unprepare(connection: MysqlConnection, statement: MysqlStatement): void {
  try {
    connection.unprepare(statement);
  } catch {
    // Nothing to close on a dead connection.
  }
}
