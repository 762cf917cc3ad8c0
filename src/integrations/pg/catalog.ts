import type { PgPool } from "./common.js";

/** One column of a table, as the catalog describes it. */
export interface ColumnInfo {
  readonly name: string;
  /** `format_type(atttypid, NULL)`: the type without its modifier (`character varying`, not `(20)`). */
  readonly type: string;
  /** An array type (or a domain over one): `unnest` would flatten its values. */
  readonly isArray: boolean;
  /** `json` or `jsonb` (or a domain over one). */
  readonly isJson: boolean;
  /** `a`: GENERATED ALWAYS AS IDENTITY; `d`: BY DEFAULT; empty: not an identity column. */
  readonly identity: string;
  /** `s`: a generated (computed) column, which cannot be inserted into. */
  readonly generated: string;
  /** The default expression, as PostgreSQL prints it (`nextval('t_id_seq'::regclass)`). */
  readonly defaultExpr: string | null;
  /** The identity column's sequence (`pg_get_serial_sequence`). */
  readonly sequence: string | null;
}

/** What the batchers need to know about a table. */
export interface TableInfo {
  readonly columns: ReadonlyMap<string, ColumnInfo>;
  /** The primary key's columns, in key order; empty without a primary key. */
  readonly primaryKey: readonly string[];
}

/**
 * The columns of the table named by `$1` (its quoted, possibly schema-qualified name: a parameter,
 * never interpolated), with their types, identity, defaults and primary-key positions.
 * `format_type(..., NULL)` drops the modifier on purpose: the batchers cast their parameters to
 * these types, and an explicit cast to `varchar(3)` would silently truncate where the INSERT's
 * own assignment raises "value too long".
 */
export const TABLE_INFO_SQL =
  "SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type, " +
  "t.typcategory = 'A' AS is_array, " +
  "format_type(COALESCE(NULLIF(t.typbasetype, 0), a.atttypid), NULL) IN ('json', 'jsonb') AS is_json, " +
  "a.attidentity AS identity, a.attgenerated AS generated, " +
  "pg_get_expr(d.adbin, d.adrelid) AS default_expr, " +
  "CASE WHEN a.attidentity <> '' THEN pg_get_serial_sequence($1::text, a.attname) END AS sequence, " +
  "array_position(pk.indkey::int2[], a.attnum) AS pk_position " +
  "FROM pg_catalog.pg_attribute a " +
  "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid " +
  "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum " +
  "LEFT JOIN pg_catalog.pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary " +
  "WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped " +
  "ORDER BY a.attnum";

/** Reads the table's columns and primary key: one query. Rejects with the driver's error. */
export async function readTableInfo(
  pool: PgPool,
  table: string,
  label: string,
): Promise<TableInfo> {
  const { rows } = await pool.query({ text: TABLE_INFO_SQL, values: [table] });
  if (rows.length === 0) {
    // A relation with no columns at all (CREATE TABLE t ()): nothing can be inserted or read.
    throw new TypeError(`table ${label} has no columns`);
  }
  const columns = new Map<string, ColumnInfo>();
  const keyed: { name: string; position: number }[] = [];
  for (const row of rows) {
    const name = String(row.name);
    columns.set(name, {
      name,
      type: String(row.type),
      isArray: row.is_array === true,
      isJson: row.is_json === true,
      identity: typeof row.identity === "string" ? row.identity : "",
      generated: typeof row.generated === "string" ? row.generated : "",
      defaultExpr: typeof row.default_expr === "string" ? row.default_expr : null,
      sequence: typeof row.sequence === "string" ? row.sequence : null,
    });
    if (row.pk_position !== null && row.pk_position !== undefined) {
      keyed.push({ name, position: Number(row.pk_position) });
    }
  }
  keyed.sort((a, b) => a.position - b.position);
  return { columns, primaryKey: keyed.map((k) => k.name) };
}

/** The column, or a `TypeError` naming the option that named it and the table's columns. */
export function columnOf(info: TableInfo, name: string, option: string, label: string): ColumnInfo {
  const column = info.columns.get(name);
  if (column === undefined) {
    const names = [...info.columns.keys()].map((n) => JSON.stringify(n)).join(", ");
    throw new TypeError(
      `${option}: table ${label} has no column ${JSON.stringify(name)} (it has ${names})`,
    );
  }
  return column;
}
