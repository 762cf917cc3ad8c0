import { Buffer } from "node:buffer";
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
  identifierOption,
  isStatementLevel,
  MAX_PLACEHOLDERS,
  type MysqlPool,
  type MysqlStatement,
  type MysqlTable,
  PacketSplitError,
  packetOption,
  poolOption,
  Statements,
  type Tunables,
  tableOption,
  tunedOptions,
} from "./common.js";
import { parameterSize, toParameter } from "./encode.js";
import { readServerInfo } from "./server.js";
import {
  KEY_OVERHEAD,
  KEYS_ALIAS,
  type LoadShape,
  loadShape,
  loadSql,
  ORD_COLUMN,
  PACKET_MARGIN,
  statementOverhead,
  TABLE_ALIAS,
} from "./sql.js";

/** Options of `MysqlLoadBatcher`: the table and key column, and the core batcher options. */
export interface MysqlLoadBatcherOptions<Key = unknown>
  extends Omit<
    BatcherOptions<Key>,
    "keyOf" | "dedupe" | "onMissingResult" | "executor" | "closeExecutor" | "weigh"
  > {
  /**
   * A `mysql2/promise` pool (`mysql.createPool(...)`), or anything with its `getConnection()`.
   * Never closed by the batcher.
   */
  pool: MysqlPool;
  /**
   * The table (or view). A string is one identifier, used exactly as written (quoted with
   * backticks, never split on dots); `{ schema, name }` for a table of another database.
   */
  table: MysqlTable;
  /** The column the keys are looked up in. */
  key: string;
  /**
   * The columns each caller gets (the key column need not be among them).
   * @default "*" (every column)
   */
  columns?: "*" | readonly string[];
  /**
   * The server's `max_allowed_packet`, in bytes: every statement is kept under it.
   * @default read once from the server (`SELECT @@max_allowed_packet`) before the first batch
   */
  maxAllowedPacket?: number;
  /**
   * Keep prepared statements open on each connection. A batch is padded with NULL keys (which
   * find no row) to the next power of two or to `maxBatchSize`, so a few statements, each
   * prepared once per connection, serve every batch. `false`: no padding, and every statement
   * is closed after its use.
   * @default true
   */
  keepPrepared?: boolean;
  /**
   * Most distinct keys in one batch (one query); at most 65,535 (the placeholder limit).
   * @default 250
   */
  maxBatchSize?: number;
  /**
   * Most bytes of keys in one query, as the batcher estimates them; at most what
   * `max_allowed_packet` leaves (the batcher lowers it itself).
   * @default what `max_allowed_packet` allows
   */
  maxBatchWeight?: number;
  /**
   * Most milliseconds the oldest key waits for others before its batch is sent.
   * `0`: none; rows that arrive together go together, and batches grow while every
   * `concurrency` slot is busy.
   * @default 0
   */
  maxQueueTime?: number;
  /**
   * Most queries running at once: keep it at most the pool's `connectionLimit`.
   * @default 4, or the pool's `connectionLimit` when smaller
   */
  concurrency?: number;
  /**
   * A query that fails is tried again in halves, so that only the keys that fail on their own
   * reject. Errors no key can cause (connection lost, no such table or column) are not split.
   * @default true
   */
  splitOnError?: boolean;
}

const OWN_KEYS = ["pool", "table", "key", "columns", "maxAllowedPacket", "keepPrepared"] as const;

/**
 * A key's identity in a batch, for `dedupe`: its type and value, so that `42`, `42n` and `"42"`
 * are three keys (each is sent, and each matches what the server says it matches), and two
 * Buffers with the same bytes are one. Strings, numbers, bigints and booleans are their own
 * identity (a `Map` tells their types apart); a Date or a Buffer is a string beginning with NUL,
 * and a string that itself begins with NUL is escaped, so no two kinds meet.
 */
export function keyIdentity(key: unknown): unknown {
  switch (typeof key) {
    case "string":
      return key.charCodeAt(0) === 0 ? `\0s${key}` : key;
    case "number":
    case "bigint":
    case "boolean":
      return key;
    default:
      if (key instanceof Date) return `\0d${key.getTime()}`;
      if (ArrayBuffer.isView(key)) {
        return `\0x${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex")}`;
      }
      return `\0?${String(key)}`;
  }
}

/** Checks a key: what the server can compare with a column. */
function checkKey(key: unknown): void {
  switch (typeof key) {
    case "string":
    case "bigint":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(key)) {
        throw new InvalidInputError("value", `a key must be a finite number, got ${String(key)}`);
      }
      return;
    case "object":
      if (key instanceof Date) {
        if (Number.isNaN(key.getTime())) {
          throw new InvalidInputError("value", "a key must not be an invalid Date");
        }
        return;
      }
      if (ArrayBuffer.isView(key)) return;
  }
  throw new InvalidInputError(
    "type",
    `a key must be a string, number, bigint, boolean, Date or Buffer, got ${describe(key)}`,
  );
}

function columnsOption(value: unknown): string[] | undefined {
  if (value === undefined || value === "*") return undefined;
  if (!Array.isArray(value)) {
    throw new TypeError(`columns must be "*" or an array of column names, got ${describe(value)}`);
  }
  return identifierListOption("columns", value);
}

/**
 * Batched lookups by key in MariaDB or MySQL with `mysql2`: `process(key)` resolves with the row
 * whose key column equals it, or `null`; every key of a batch is fetched with ONE query, and a
 * key asked for twice in a batch is fetched once.
 *
 * Rows are matched to keys by the server, not in JavaScript: the batch's keys form a derived
 * table numbered by position, joined to the table on the key column, so a key matches exactly
 * the rows `WHERE key = ?` would (the column's collation: `'abc'` finds `'ABC'` in a
 * case-insensitive column, trailing spaces are ignored in PAD SPACE collations; `"42"` finds
 * 42 in an INT column). A key that finds more than one row (a column that is not unique) rejects
 * its caller with a `RangeError`.
 *
 * ```ts
 * const users = new MysqlLoadBatcher<number, User>({ pool, table: "users", key: "id" });
 * const user = await users.process(42); // User | null
 * ```
 *
 * @typeParam Key - what a caller passes: a string, number, bigint, boolean, `Date` or Buffer
 * @typeParam Row - the row it gets
 */
export class MysqlLoadBatcher<Key = unknown, Row = Record<string, unknown>> extends AsyncBatcher<
  Key,
  Row | null
> {
  /** The table, as quoted in the SQL. */
  readonly table: string;
  /** The key column. */
  readonly key: string;
  readonly #pool: MysqlPool;
  readonly #shape: LoadShape;
  readonly #statements: Statements;
  readonly #keepPrepared: boolean;
  readonly #packet: Lazy<number>;
  readonly #defaults: Tunables;
  readonly #overhead: number;
  #budget: number;
  #packetKnown: boolean;
  #userWeight: number;
  #maxBatchSize: number;
  /** The statements of the sizes kept prepared (see `#sizeFor`), by number of keys. */
  readonly #kept = new Map<number, MysqlStatement>();

  /** Checks every option (a bad one throws a `TypeError`/`RangeError` naming it). No query is sent. */
  constructor(options: MysqlLoadBatcherOptions<Key>) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `options must be an object with pool, table and key, got ${describe(options)}`,
      );
    }
    const pool = poolOption(options.pool);
    const table = tableOption(options.table);
    const key = identifierOption("key", options.key);
    const columns = columnsOption(options.columns);
    const packet = packetOption(options.maxAllowedPacket);
    const keep = booleanOption("keepPrepared", options.keepPrepared, true);
    const shape = loadShape({ table: table.sql, key, columns });
    const overhead = statementOverhead(shape.prefix + shape.suffix, MAX_PLACEHOLDERS);
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
      "MysqlLoadBatcher",
      MAX_PLACEHOLDERS,
      (k: unknown) => KEY_OVERHEAD + parameterSize(toParameter(k, "a key")),
    );
    const userWeight = (core.maxBatchWeight as number | undefined) ?? Number.POSITIVE_INFINITY;
    core.maxBatchWeight = Math.min(userWeight, budget);
    core.keyOf = keyIdentity;
    core.dedupe = true;
    super(core as BatcherOptions<Key, Row | null>);
    this.table = table.sql;
    this.key = key;
    this.#pool = pool;
    this.#shape = shape;
    this.#statements = new Statements(pool, keep);
    this.#keepPrepared = keep;
    this.#packet = new Lazy(
      async () => (await readServerInfo(this.#pool, undefined)).maxAllowedPacket,
    );
    this.#defaults = defaults;
    this.#overhead = overhead;
    this.#budget = budget;
    this.#packetKnown = packet !== undefined;
    this.#userWeight = userWeight;
    this.#maxBatchSize = core.maxBatchSize as number;
  }

  /**
   * Queues one key and resolves with its row, or `null` when there is none. Rejects at once,
   * alone, with `InvalidInputError` for a key that cannot be compared (`null`, an object:
   * `reason: "type"`; `NaN`, an invalid `Date`: `"value"`); with a `RangeError` when the key
   * finds several rows.
   */
  override process(key: Key, options?: ProcessOptions): Promise<Row | null> {
    try {
      checkKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return super.process(key, options);
  }

  /**
   * Changes limits on the running batcher, as `AsyncBatcher.setOptions` does. `maxBatchSize` is
   * capped at 65,535 and `maxBatchWeight` at what `max_allowed_packet` leaves; a key set to
   * `undefined` goes back to this batcher's default.
   */
  override setOptions(options: TunableOptions): void {
    const tuned = tunedOptions(options, this.#defaults, MAX_PLACEHOLDERS, this.#budget);
    super.setOptions(tuned);
    if (typeof options === "object" && options !== null && "maxBatchWeight" in options) {
      this.#userWeight = options.maxBatchWeight ?? Number.POSITIVE_INFINITY;
    }
    if (tuned.maxBatchSize !== undefined && tuned.maxBatchSize !== this.#maxBatchSize) {
      this.#maxBatchSize = tuned.maxBatchSize;
      // Close the statements of sizes no batch is padded to any more.
      for (const [size, statement] of this.#kept) {
        if (!this.#isKeptSize(size)) {
          this.#statements.retire(statement);
          this.#kept.delete(size);
        }
      }
    }
  }

  /** Loads one batch of distinct keys with one query. Called by the batcher; not for direct use. */
  async processBatch(keys: Key[]): Promise<BatchResult<Row | null>> {
    if (!this.#packetKnown) {
      let packet: number;
      try {
        packet = await this.#packet.get();
      } catch (error) {
        if (isStatementLevel(error)) return keys.map(() => error as Error);
        throw error;
      }
      this.#learnPacket(packet);
    }
    const values = keys.map((key) => toParameter(key, "a key"));
    let weight = 0;
    for (const value of values) weight += KEY_OVERHEAD + parameterSize(value);
    if (weight > this.#budget) {
      // Only for batches cut before the server's max_allowed_packet was known (see insert.ts).
      if (keys.length === 1) return [new ItemTooLargeError(weight, this.#budget)];
      throw new PacketSplitError(
        `a batch of ${keys.length} keys (about ${weight} bytes) does not fit in max_allowed_packet: split it`,
      );
    }
    // Padded with NULL keys (which match no row) to a size whose statement stays prepared.
    let size = this.#sizeFor(keys.length);
    if (weight + (size - keys.length) * KEY_OVERHEAD > this.#budget) size = keys.length;
    for (let i = keys.length; i < size; i++) values.push(null);
    const kept = this.#isKeptSize(size);
    let statement = this.#kept.get(size);
    if (statement === undefined) {
      statement = this.#statement(size);
      if (kept) this.#kept.set(size, statement);
    }
    let rows: unknown;
    try {
      rows = await this.#statements.run(statement, values, kept);
    } catch (error) {
      if (isStatementLevel(error)) return keys.map(() => error as Error);
      throw error;
    }
    return this.#match(keys, rows as NestedRow[]);
  }

  #statement(keys: number): MysqlStatement {
    // nestTables: each row comes as { k: { o }, t: { ...the table's columns } }, so the position
    // column cannot hide (or be hidden by) a column of the table.
    return { sql: loadSql(this.#shape, keys), nestTables: true, rowsAsArray: false };
  }

  /**
   * The number of keys a batch of `n` is sent as: the next power of two, or `maxBatchSize`. So
   * at most about log2(maxBatchSize) + 1 statements (9 for 250 keys) serve every batch, each
   * prepared once per connection and kept, whatever sizes dedupe and the traffic make; the NULL
   * keys added at most double the keys sent, and cost the server next to nothing.
   */
  #sizeFor(n: number): number {
    if (n >= this.#maxBatchSize || !this.#keepPrepared) return n;
    let size = 1;
    while (size < n) size *= 2;
    return Math.min(size, this.#maxBatchSize);
  }

  /** Whether batches are sent with `size` keys (and its statement kept): see `#sizeFor`. */
  #isKeptSize(size: number): boolean {
    return size === this.#maxBatchSize || (size <= this.#maxBatchSize && (size & (size - 1)) === 0);
  }

  #learnPacket(packet: number): void {
    this.#packetKnown = true;
    this.#budget = Math.max(1, packet - this.#overhead - PACKET_MARGIN);
    super.setOptions({ maxBatchWeight: Math.min(this.#userWeight, this.#budget) });
  }

  /** Each key's row (by the position the server joined it to), `null`, or a `RangeError`. */
  #match(keys: readonly Key[], rows: readonly NestedRow[]): (Row | null | Error)[] {
    const out = new Array<Row | null | Error>(keys.length).fill(null);
    let extra: number[] | undefined;
    for (const row of rows) {
      const ord = Number(row[KEYS_ALIAS]?.[ORD_COLUMN]);
      if (!(Number.isInteger(ord) && ord >= 0 && ord < keys.length)) continue;
      if (out[ord] === null) out[ord] = row[TABLE_ALIAS] as Row;
      else {
        extra ??= new Array<number>(keys.length).fill(0);
        extra[ord] = (extra[ord] as number) + 1;
      }
    }
    if (extra !== undefined) {
      for (let i = 0; i < keys.length; i++) {
        const count = 1 + (extra[i] as number);
        if (count > 1) {
          out[i] = new RangeError(
            `key ${describe(keys[i])} matched ${count} rows of ${this.table}: ${JSON.stringify(this.key)} is not unique`,
          );
        }
      }
    }
    return out;
  }
}

/** A row of the load query as mysql2 gives it with `nestTables`. */
type NestedRow = Record<string, Record<string, unknown> | undefined>;
