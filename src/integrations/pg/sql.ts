/**
 * The statements the batchers send, as pure functions of their configuration: identifiers are
 * quoted here, type names come from the catalog (`format_type`), and every value is a parameter.
 */
import { quoteIdent } from "./common.js";

/** Most parameters in one statement: the protocol counts them in 16 bits. */
export const MAX_PARAMETERS = 65_535;

/** `ON CONFLICT`, resolved: `set` filled in for `update`. */
export type ConflictSpec =
  | { readonly target: readonly string[]; readonly action: "nothing" }
  | {
      readonly target: readonly string[];
      readonly action: "update";
      readonly set: readonly string[];
    };

/**
 * How a returned row finds its caller.
 * - `columns`: by equality on columns the caller gave (the primary key, or the conflict target).
 * - `generated`: the single-column primary key is computed in the statement's input, one value
 *   per caller (`nextval` of its identity sequence, or its default expression), inserted
 *   explicitly, and matched on.
 */
export type RowMatch =
  | { readonly kind: "columns"; readonly columns: readonly string[] }
  | {
      readonly kind: "generated";
      readonly column: string;
      /** The identity sequence's name (sent as a parameter), or the column's default expression. */
      readonly value: { readonly sequence: string } | { readonly expression: string };
      /** `OVERRIDING SYSTEM VALUE`: for a GENERATED ALWAYS identity column. */
      readonly overriding: boolean;
    };

export interface ReturningSpec {
  /** The columns each caller gets back. */
  readonly columns: "*" | readonly string[];
  readonly match: RowMatch;
  /** The result column holding the caller's position (1-based): none of the table's columns. */
  readonly ordAlias: string;
  /** The result columns holding the match key's values, one per key column: none of the table's. */
  readonly keyAliases: readonly string[];
}

export interface InsertSpec {
  /** The quoted (possibly schema-qualified) table. */
  readonly table: string;
  readonly columns: readonly string[];
  /** One type per column (`format_type`, without modifier), cast to in the statement. */
  readonly types: readonly string[];
  /**
   * `unnest`: one array parameter per column, whatever the number of rows (constant text);
   * `values`: one parameter per value (for array-typed columns, which `unnest` would flatten).
   */
  readonly form: "unnest" | "values";
  readonly conflict: ConflictSpec | undefined;
  readonly returning: ReturningSpec | undefined;
}

/** A statement for `rows` rows: its text, and the parameters that follow the row data. */
export interface InsertStatement {
  readonly text: string;
  readonly extraParams: readonly unknown[];
}

/** Parameters of one statement beyond the row data. */
export function extraParameterCount(spec: InsertSpec): number {
  const match = spec.returning?.match;
  return match?.kind === "generated" && "sequence" in match.value ? 1 : 0;
}

/** Most rows in one statement: unbounded with `unnest`, parameters ÷ columns with `values`. */
export function maxRowsPerStatement(spec: InsertSpec): number {
  if (spec.form === "unnest") return Number.POSITIVE_INFINITY;
  return Math.floor((MAX_PARAMETERS - extraParameterCount(spec)) / spec.columns.length);
}

/** The internal name of configured column `i` inside the statement: never a user identifier. */
const internal = (i: number) => `c${i + 1}`;

/**
 * The rows as a relation `u(c1, ..., cn, ord)`, `ord` numbering the callers from 1:
 * `unnest($1::t1[], ...) WITH ORDINALITY`, or `(VALUES ($1::t1, ..., 1), ...)`.
 */
function source(spec: InsertSpec, rows: number): string {
  const n = spec.columns.length;
  const names = [...spec.columns.map((_, i) => internal(i)), "ord"].join(", ");
  if (spec.form === "unnest") {
    const arrays = spec.types.map((type, i) => `$${i + 1}::${type}[]`).join(", ");
    return `unnest(${arrays}) WITH ORDINALITY AS u(${names})`;
  }
  const tuples: string[] = new Array(rows);
  for (let r = 0; r < rows; r++) {
    const values = spec.types.map((type, i) => `$${r * n + i + 1}::${type}`);
    tuples[r] = `(${values.join(", ")}, ${r + 1})`;
  }
  return `(VALUES ${tuples.join(", ")}) AS u(${names})`;
}

/**
 * One row per conflict target value: `DISTINCT ON` the target, keeping the last caller's row
 * (`update`: a later upsert of the same key wins, as it would one statement after the other) or
 * the first's (`nothing`: the first inserts, the later ones would be skipped). A row with a NULL
 * in the target never conflicts, so it is kept whatever: its own `ord` joins the `DISTINCT ON`.
 */
function distinctOnTarget(spec: InsertSpec, target: readonly string[], from: string): string {
  const keys = target.map((name) => internal(spec.columns.indexOf(name)));
  const nullGuard = `(CASE WHEN ${keys.map((k) => `${k} IS NULL`).join(" OR ")} THEN ord END)`;
  const distinct = [...keys, nullGuard].join(", ");
  const order = spec.conflict?.action === "update" ? "DESC" : "ASC";
  return `SELECT DISTINCT ON (${distinct}) * FROM ${from} ORDER BY ${distinct}, ord ${order}`;
}

function conflictClause(conflict: ConflictSpec | undefined): string {
  if (conflict === undefined) return "";
  const target = conflict.target.map(quoteIdent).join(", ");
  if (conflict.action === "nothing") return ` ON CONFLICT (${target}) DO NOTHING`;
  const set = conflict.set.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(", ");
  return ` ON CONFLICT (${target}) DO UPDATE SET ${set}`;
}

/**
 * The INSERT of `rows` rows (`rows` only matters for the `values` form). Without `returning`:
 *
 * ```sql
 * INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM unnest($1::integer[], $2::text[])
 *   WITH ORDINALITY AS u(c1, c2, ord) [ON CONFLICT ...]
 * ```
 *
 * With `returning`, a data-modifying CTE joins each returned row back to its caller's `ord`:
 *
 * ```sql
 * WITH i AS (SELECT * FROM unnest(...) WITH ORDINALITY AS u(c1, c2, ord)),
 *   ins AS (INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM i RETURNING *, "a" AS "__key1")
 * SELECT i.ord AS "__ord", ins.* FROM ins JOIN i ON i.c1 = ins."__key1"
 * ```
 */
export function insertSql(spec: InsertSpec, rows: number): InsertStatement {
  const src = source(spec, rows);
  const conflict = spec.conflict;
  const returning = spec.returning;
  const insertInto = `INSERT INTO ${spec.table} (${spec.columns.map(quoteIdent).join(", ")})`;
  const picked = spec.columns.map((_, i) => internal(i)).join(", ");
  if (returning === undefined) {
    // DO UPDATE must not meet the same target twice ("cannot affect row a second time").
    const from =
      conflict?.action === "update"
        ? `(${distinctOnTarget(spec, conflict.target, src)}) AS k`
        : src;
    return {
      text: `${insertInto} SELECT ${picked} FROM ${from}${conflictClause(conflict)}`,
      extraParams: [],
    };
  }
  const match = returning.match;
  const extraParams: unknown[] = [];
  let input: string;
  let into = insertInto;
  let selected = picked;
  if (match.kind === "generated") {
    let value: string;
    if ("sequence" in match.value) {
      const n = spec.form === "unnest" ? spec.columns.length : rows * spec.columns.length;
      value = `nextval($${n + 1}::regclass)`;
      extraParams.push(match.value.sequence);
    } else {
      value = `(${match.value.expression})`;
    }
    // MATERIALIZED: each caller's key is computed once, and the INSERT and the join see the same.
    input = `i AS MATERIALIZED (SELECT ${value} AS pk, u.* FROM ${src})`;
    into = `INSERT INTO ${spec.table} (${[match.column, ...spec.columns].map(quoteIdent).join(", ")})${match.overriding ? " OVERRIDING SYSTEM VALUE" : ""}`;
    selected = `pk, ${picked}`;
  } else {
    input = `i AS (SELECT * FROM ${src})`;
  }
  // With a conflict target, the rows are made distinct on it (see distinctOnTarget); `nothing`
  // matches only the kept rows (a skipped duplicate gets no row), `update` matches every caller
  // of a key (they all get the row as it ends up).
  const dedupe = conflict !== undefined;
  const ctes = [input];
  if (dedupe) ctes.push(`k AS (${distinctOnTarget(spec, conflict.target, "i")})`);
  const keyColumns = match.kind === "generated" ? [match.column] : match.columns;
  const returned = returning.columns === "*" ? "*" : returning.columns.map(quoteIdent).join(", ");
  const keys = keyColumns
    .map((c, j) => `${quoteIdent(c)} AS ${quoteIdent(returning.keyAliases[j] as string)}`)
    .join(", ");
  ctes.push(
    `ins AS (${into} SELECT ${selected} FROM ${dedupe ? "k" : "i"}${conflictClause(conflict)} RETURNING ${returned}, ${keys})`,
  );
  const joined = conflict?.action === "nothing" ? "k" : "i";
  const on =
    match.kind === "generated"
      ? `${joined}.pk = ins.${quoteIdent(returning.keyAliases[0] as string)}`
      : match.columns
          .map(
            (c, j) =>
              `${joined}.${internal(spec.columns.indexOf(c))} = ins.${quoteIdent(returning.keyAliases[j] as string)}`,
          )
          .join(" AND ");
  return {
    text: `WITH ${ctes.join(", ")} SELECT ${joined}.ord AS ${quoteIdent(returning.ordAlias)}, ins.* FROM ins JOIN ${joined} ON ${on}`,
    extraParams,
  };
}

/**
 * The load of a batch of keys by a table's column, each returned row with the position of the key
 * that found it:
 *
 * ```sql
 * WITH found AS MATERIALIZED (SELECT * FROM "users" WHERE "id" = ANY($1::integer[]))
 * SELECT k.ord AS "__ord", t.* FROM unnest($1::integer[]) WITH ORDINALITY AS k(key, ord)
 *   JOIN found AS t ON t."id" = k.key
 * ```
 */
export function loadSql(
  table: string,
  key: string,
  keyType: string,
  columns: "*" | readonly string[],
  ordAlias: string,
): string {
  const selected = columns === "*" ? "t.*" : columns.map((c) => `t.${quoteIdent(c)}`).join(", ");
  // The rows are found by `= ANY($1)` first (an index scan), in a MATERIALIZED CTE that the
  // planner cannot fold into the join: joined straight to `unnest`, a small table is hashed
  // whole. Then the few rows found are matched to the keys' positions by the server's own
  // equality, whatever JS type each key came as.
  return (
    `WITH found AS MATERIALIZED (SELECT * FROM ${table} WHERE ${quoteIdent(key)} = ANY($1::${keyType}[])) ` +
    `SELECT k.ord AS ${quoteIdent(ordAlias)}, ${selected} ` +
    `FROM unnest($1::${keyType}[]) WITH ORDINALITY AS k(key, ord) ` +
    `JOIN found AS t ON t.${quoteIdent(key)} = k.key`
  );
}
