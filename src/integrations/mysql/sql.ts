import { quoteId } from "./common.js";
import { lengthPrefix, PARAM_OVERHEAD } from "./encode.js";

/**
 * SQL text of the statements. Only identifiers from the configuration (quoted by `quoteId`) and
 * numbers the batcher made up (positions) ever appear in it: every value is a `?` placeholder.
 */

/** What a multi-row INSERT is made of. */
export interface InsertSpec {
  /** The table, quoted. */
  readonly table: string;
  readonly columns: readonly string[];
  /** `INSERT IGNORE`. */
  readonly ignore: boolean;
  /** Columns set by `ON DUPLICATE KEY UPDATE c = VALUES(c)`; none: no such clause. */
  readonly update: readonly string[] | undefined;
}

/** The parts of an INSERT around its rows: `prefix + rows.join(",") + suffix`. */
export interface InsertShape {
  readonly prefix: string;
  /** `(?,?,?)`: one row's placeholders. */
  readonly tuple: string;
  readonly suffix: string;
}

export function insertShape(spec: InsertSpec): InsertShape {
  const columns = spec.columns.map(quoteId).join(", ");
  const prefix = `INSERT${spec.ignore ? " IGNORE" : ""} INTO ${spec.table} (${columns}) VALUES `;
  const tuple = `(${new Array(spec.columns.length).fill("?").join(",")})`;
  // VALUES(c) in ON DUPLICATE KEY UPDATE works on MariaDB and MySQL; MySQL 8.0.20+ deprecates
  // it (a warning) in favour of a row alias that MariaDB does not have.
  const suffix =
    spec.update === undefined
      ? ""
      : ` ON DUPLICATE KEY UPDATE ${spec.update
          .map((c) => `${quoteId(c)} = VALUES(${quoteId(c)})`)
          .join(", ")}`;
  return { prefix, tuple, suffix };
}

/** The INSERT of `rows` rows. */
export function insertSql(shape: InsertShape, rows: number): string {
  return `${shape.prefix}${new Array(rows).fill(shape.tuple).join(",")}${shape.suffix}`;
}

/**
 * Bytes a row adds to either packet, besides its values' own (`parameterSize`): in the
 * prepare packet, its placeholders `(?,?,?),` (2 per column + 2); in the execute packet, 3
 * bytes per value (`PARAM_OVERHEAD`) and its share of the NULL bitmap (1 bit per value, counted
 * as a byte per 8 values, rounded up). The larger of the two bounds both.
 */
export function rowOverhead(columns: number): number {
  return Math.max(2 * columns + 2, PARAM_OVERHEAD * columns + Math.ceil(columns / 8));
}

/**
 * Bytes of either packet that do not depend on the rows, at most: the prepare packet's command
 * byte and SQL text around the rows; the execute packet's command byte, statement id, flags,
 * iteration count, bound flag and parameter count (20).
 */
export function statementOverhead(sqlAroundRows: string, parameters: number): number {
  const text = 1 + Buffer.byteLength(sqlAroundRows, "utf8");
  return Math.max(text, 11 + lengthPrefix(parameters) + 9);
}

/**
 * Bytes kept free under `max_allowed_packet` besides the estimate: the estimate is an upper
 * bound already; this covers the protocol's framing and the server's own accounting.
 */
export const PACKET_MARGIN = 1024;

/** The alias of the derived table of keys, and of its columns. */
export const KEYS_ALIAS = "k";
export const TABLE_ALIAS = "t";
export const KEY_COLUMN = "k";
export const ORD_COLUMN = "o";

/** What a load by keys is made of. */
export interface LoadSpec {
  /** The table, quoted. */
  readonly table: string;
  readonly key: string;
  /** The columns each caller gets; none: every column (`t.*`). */
  readonly columns: readonly string[] | undefined;
}

/** The parts of a load around its keys: `prefix + first + rest... + suffix`. */
export interface LoadShape {
  readonly prefix: string;
  readonly suffix: string;
}

export function loadShape(spec: LoadSpec): LoadShape {
  const t = quoteId(TABLE_ALIAS);
  const k = quoteId(KEYS_ALIAS);
  const columns =
    spec.columns === undefined
      ? `${t}.*`
      : spec.columns.map((c) => `${t}.${quoteId(c)}`).join(", ");
  return {
    prefix: `SELECT ${k}.${quoteId(ORD_COLUMN)}, ${columns} FROM (`,
    suffix: `) AS ${k} JOIN ${spec.table} AS ${t} ON ${t}.${quoteId(spec.key)} = ${k}.${quoteId(KEY_COLUMN)}`,
  };
}

/**
 * The load of `keys` keys: the keys as a derived table numbered by position, joined to the
 * table on the key column. The server compares each key as `key = ?` would (the column's
 * collation, its type conversions), and each row comes back with the position of the key it
 * matched: two keys equal for the server (`'abc'` and `'ABC'` in a case-insensitive column)
 * each get the row.
 *
 * ```sql
 * SELECT `k`.`o`, `t`.* FROM (SELECT ? AS `k`, 0 AS `o` UNION ALL SELECT ?, 1) AS `k`
 *   JOIN `users` AS `t` ON `t`.`id` = `k`.`k`
 * ```
 */
export function loadSql(shape: LoadShape, keys: number): string {
  const parts = [`SELECT ? AS ${quoteId(KEY_COLUMN)}, 0 AS ${quoteId(ORD_COLUMN)}`];
  for (let i = 1; i < keys; i++) parts.push(`SELECT ?, ${i}`);
  return `${shape.prefix}${parts.join(" UNION ALL ")}${shape.suffix}`;
}

/**
 * Bytes a key adds to either packet besides its value's own: ` UNION ALL SELECT ?, 65534` (26)
 * in the prepare packet, 3 bytes and a bit in the execute packet.
 */
export const KEY_OVERHEAD = 27;
