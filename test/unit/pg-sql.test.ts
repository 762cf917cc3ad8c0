/**
 * The SQL that `async-batcher/pg` sends, from its configuration and the table's catalog entry
 * (a fake pool): identifiers quoted, types cast from the catalog, values only as parameters, one
 * statement per batch, constant text for the `unnest` form.
 */
import { PgInsertBatcher, PgLoadBatcher } from "async-batcher/pg";
import { describe, expect, it } from "vitest";
import { quoteIdent } from "../../src/integrations/pg/common.js";
import {
  type InsertSpec,
  insertSql,
  loadSql,
  maxRowsPerStatement,
} from "../../src/integrations/pg/sql.js";
import { FakePool } from "../helpers/fake-pg.js";

const spec = (over: Partial<InsertSpec> = {}): InsertSpec => ({
  table: '"t"',
  columns: ["a", "b"],
  types: ["integer", "text"],
  form: "unnest",
  conflict: undefined,
  returning: undefined,
  ...over,
});

describe("quoteIdent", () => {
  it.each([
    ["plain", '"plain"'],
    ["MixedCase", '"MixedCase"'],
    ['we"ird', '"we""ird"'],
    ['""', '""""""'],
    ["a; DROP TABLE x; --", '"a; DROP TABLE x; --"'],
    ["app.events", '"app.events"'],
    ["ünïcødé 🎉", '"ünïcødé 🎉"'],
  ])("%s → %s", (name, quoted) => {
    expect(quoteIdent(name)).toBe(quoted);
  });
});

describe("insertSql", () => {
  it("unnest: one array parameter per column, the same text for any number of rows", () => {
    const one = insertSql(spec(), 1);
    expect(one.text).toBe(
      'INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM unnest($1::integer[], $2::text[]) WITH ORDINALITY AS u(c1, c2, ord)',
    );
    expect(insertSql(spec(), 1000).text).toBe(one.text);
    expect(one.extraParams).toEqual([]);
    expect(maxRowsPerStatement(spec())).toBe(Number.POSITIVE_INFINITY);
  });

  it("values: one parameter per value, cast, for array-typed columns", () => {
    const s = spec({ form: "values", types: ["integer[]", "text"] });
    expect(insertSql(s, 2).text).toBe(
      'INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM (VALUES ($1::integer[], $2::text, 1), ($3::integer[], $4::text, 2)) AS u(c1, c2, ord)',
    );
    expect(maxRowsPerStatement(s)).toBe(32_767);
    expect(maxRowsPerStatement({ ...s, columns: ["a", "b", "c"] })).toBe(21_845);
  });

  it("ON CONFLICT DO NOTHING", () => {
    const s = spec({ conflict: { target: ["a"], action: "nothing" } });
    expect(insertSql(s, 3).text).toBe(
      'INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM unnest($1::integer[], $2::text[]) WITH ORDINALITY AS u(c1, c2, ord) ON CONFLICT ("a") DO NOTHING',
    );
  });

  it("ON CONFLICT DO UPDATE: one row per target, the last caller's, NULL targets all kept", () => {
    const s = spec({ conflict: { target: ["a"], action: "update", set: ["b"] } });
    expect(insertSql(s, 3).text).toBe(
      'INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM (SELECT DISTINCT ON (c1, (CASE WHEN c1 IS NULL THEN ord END)) * FROM unnest($1::integer[], $2::text[]) WITH ORDINALITY AS u(c1, c2, ord) ORDER BY c1, (CASE WHEN c1 IS NULL THEN ord END), ord DESC) AS k ON CONFLICT ("a") DO UPDATE SET "b" = EXCLUDED."b"',
    );
  });

  it("returning, matched on configured key columns", () => {
    const s = spec({
      returning: {
        columns: "*",
        match: { kind: "columns", columns: ["a"] },
        ordAlias: "__ord",
        keyAliases: ["__key1"],
      },
    });
    expect(insertSql(s, 2).text).toBe(
      'WITH i AS (SELECT * FROM unnest($1::integer[], $2::text[]) WITH ORDINALITY AS u(c1, c2, ord)), ins AS (INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM i RETURNING *, "a" AS "__key1") SELECT i.ord AS "__ord", ins.* FROM ins JOIN i ON i.c1 = ins."__key1"',
    );
  });

  it("returning, with an identity key drawn from its sequence (a parameter) in a MATERIALIZED input", () => {
    const s = spec({
      returning: {
        columns: ["id"],
        match: {
          kind: "generated",
          column: "id",
          value: { sequence: 'public."t_id_seq"' },
          overriding: true,
        },
        ordAlias: "__ord",
        keyAliases: ["__key1"],
      },
    });
    const statement = insertSql(s, 5);
    expect(statement.text).toBe(
      'WITH i AS MATERIALIZED (SELECT nextval($3::regclass) AS pk, u.* FROM unnest($1::integer[], $2::text[]) WITH ORDINALITY AS u(c1, c2, ord)), ins AS (INSERT INTO "t" ("id", "a", "b") OVERRIDING SYSTEM VALUE SELECT pk, c1, c2 FROM i RETURNING "id", "id" AS "__key1") SELECT i.ord AS "__ord", ins.* FROM ins JOIN i ON i.pk = ins."__key1"',
    );
    expect(statement.extraParams).toEqual(['public."t_id_seq"']);
    // In the VALUES form the sequence follows the rows' parameters.
    expect(insertSql({ ...s, form: "values" }, 2).text).toContain("nextval($5::regclass)");
    expect(maxRowsPerStatement({ ...s, form: "values" })).toBe(32_767);
  });

  it("returning, with a default expression for the key", () => {
    const s = spec({
      returning: {
        columns: ["id"],
        match: {
          kind: "generated",
          column: "id",
          value: { expression: "gen_random_uuid()" },
          overriding: false,
        },
        ordAlias: "__ord",
        keyAliases: ["__key1"],
      },
    });
    const statement = insertSql(s, 5);
    expect(statement.text).toContain("SELECT (gen_random_uuid()) AS pk, u.*");
    expect(statement.text).not.toContain("OVERRIDING");
    expect(statement.extraParams).toEqual([]);
  });

  it("returning with DO NOTHING: duplicates kept first, only kept rows are matched", () => {
    const s = spec({
      conflict: { target: ["a"], action: "nothing" },
      returning: {
        columns: ["b"],
        match: { kind: "columns", columns: ["a"] },
        ordAlias: "__ord",
        keyAliases: ["__key1"],
      },
    });
    expect(insertSql(s, 2).text).toBe(
      'WITH i AS (SELECT * FROM unnest($1::integer[], $2::text[]) WITH ORDINALITY AS u(c1, c2, ord)), k AS (SELECT DISTINCT ON (c1, (CASE WHEN c1 IS NULL THEN ord END)) * FROM i ORDER BY c1, (CASE WHEN c1 IS NULL THEN ord END), ord ASC), ins AS (INSERT INTO "t" ("a", "b") SELECT c1, c2 FROM k ON CONFLICT ("a") DO NOTHING RETURNING "b", "a" AS "__key1") SELECT k.ord AS "__ord", ins.* FROM ins JOIN k ON k.c1 = ins."__key1"',
    );
  });

  it("returning with DO UPDATE: duplicates kept last, every caller of a key matched", () => {
    const s = spec({
      columns: ["a", "b", "c"],
      types: ["integer", "text", "uuid"],
      conflict: { target: ["a", "c"], action: "update", set: ["b"] },
      returning: {
        columns: "*",
        match: { kind: "columns", columns: ["a", "c"] },
        ordAlias: "__ord",
        keyAliases: ["__key1", "__key2"],
      },
    });
    const text = insertSql(s, 2).text;
    expect(text).toContain(
      "k AS (SELECT DISTINCT ON (c1, c3, (CASE WHEN c1 IS NULL OR c3 IS NULL THEN ord END)) * FROM i ORDER BY c1, c3, (CASE WHEN c1 IS NULL OR c3 IS NULL THEN ord END), ord DESC)",
    );
    expect(text).toContain('ON CONFLICT ("a", "c") DO UPDATE SET "b" = EXCLUDED."b"');
    expect(text).toContain('RETURNING *, "a" AS "__key1", "c" AS "__key2"');
    expect(text).toContain(
      'SELECT i.ord AS "__ord", ins.* FROM ins JOIN i ON i.c1 = ins."__key1" AND i.c3 = ins."__key2"',
    );
  });

  it("quotes hostile identifiers everywhere they appear", () => {
    const hostile = ['x"); DROP TABLE t; --', "ünï 🎉", 'a""b'];
    const s = spec({
      table: quoteIdent('t"; --'),
      columns: hostile,
      types: ["integer", "text", "text"],
      conflict: { target: [hostile[0] as string], action: "update", set: hostile.slice(1) },
      returning: {
        columns: hostile,
        match: { kind: "columns", columns: [hostile[0] as string] },
        ordAlias: "__ord",
        keyAliases: ["__key1"],
      },
    });
    const text = insertSql(s, 1).text;
    expect(text).toContain('INSERT INTO "t""; --" ("x""); DROP TABLE t; --", "ünï 🎉", "a""""b")');
    expect(text).toContain('SET "ünï 🎉" = EXCLUDED."ünï 🎉", "a""""b" = EXCLUDED."a""""b"');
    expect(text).toContain('RETURNING "x""); DROP TABLE t; --", "ünï 🎉", "a""""b", "x""); DROP');
    // Outside the quoted identifiers, nothing of the names is left.
    const unquoted = text.replace(/"(?:[^"]|"")*"/g, "ID");
    expect(unquoted).not.toMatch(/DROP|--|;|🎉/);
  });
});

describe("loadSql", () => {
  it("joins the keys, numbered, to the table", () => {
    expect(loadSql('"users"', "id", "bigint", "*", "__ord")).toBe(
      'WITH found AS MATERIALIZED (SELECT * FROM "users" WHERE "id" = ANY($1::bigint[])) SELECT k.ord AS "__ord", t.* FROM unnest($1::bigint[]) WITH ORDINALITY AS k(key, ord) JOIN found AS t ON t."id" = k.key',
    );
    expect(loadSql('"s"."u"', 'I"d', "uuid", ["a", 'b"'], "__ord_2")).toBe(
      'WITH found AS MATERIALIZED (SELECT * FROM "s"."u" WHERE "I""d" = ANY($1::uuid[])) SELECT k.ord AS "__ord_2", t."a", t."b""" FROM unnest($1::uuid[]) WITH ORDINALITY AS k(key, ord) JOIN found AS t ON t."I""d" = k.key',
    );
  });
});

describe("statements built from the catalog", () => {
  const columns = [
    {
      name: "id",
      type: "bigint",
      identity: "a",
      sequence: 'public."ev""ents_id_seq"',
      pk_position: 0,
    },
    { name: "user id", type: "integer" },
    { name: "Kind", type: "character varying" },
    { name: "payload", type: "jsonb", is_json: true },
    { name: "__ord", type: "text" },
  ];

  it("sends the table's name as a parameter to the catalog query, and one statement per batch", async () => {
    const pool = new FakePool(columns);
    const batcher = new PgInsertBatcher({
      pool,
      table: { schema: "app", name: 'ev"ents' },
      columns: ["user id", "Kind", "payload"],
      maxQueueTime: Number.POSITIVE_INFINITY,
    });
    const done = Promise.all([1, 2, 3].map((n) => batcher.process({ "user id": n, Kind: "k" })));
    await batcher.flush();
    await done;
    expect(pool.queries[0]?.values).toEqual(['"app"."ev""ents"']);
    expect(pool.statements).toHaveLength(1);
    expect(pool.statements[0]?.text).toBe(
      'INSERT INTO "app"."ev""ents" ("user id", "Kind", "payload") SELECT c1, c2, c3 FROM unnest($1::integer[], $2::character varying[], $3::jsonb[]) WITH ORDINALITY AS u(c1, c2, c3, ord)',
    );
    expect(pool.statements[0]?.values).toEqual([
      [1, 2, 3],
      ["k", "k", "k"],
      [null, null, null],
    ]);
    await batcher.stop();
  });

  it("picks result aliases that no column of the table has, and the identity sequence", async () => {
    const pool = new FakePool(columns);
    const batcher = new PgInsertBatcher({
      pool,
      table: "events",
      columns: ["user id"],
      returning: "*",
      maxQueueTime: 0,
    });
    await batcher.process({ "user id": 1 });
    const text = pool.statements[0]?.text ?? "";
    expect(text).toContain('SELECT i.ord AS "__ord_2", ins.*');
    expect(text).toContain('"id" AS "__key1"');
    expect(text).toContain("OVERRIDING SYSTEM VALUE");
    expect(pool.statements[0]?.values.at(-1)).toBe('public."ev""ents_id_seq"');
    await batcher.stop();
  });

  it("loads with the key column's type from the catalog", async () => {
    const pool = new FakePool(columns);
    const batcher = new PgLoadBatcher({ pool, table: "events", key: "user id", maxQueueTime: 0 });
    await Promise.all([batcher.process(1), batcher.process(2)]);
    expect(pool.statements).toEqual([
      {
        text: 'WITH found AS MATERIALIZED (SELECT * FROM "events" WHERE "user id" = ANY($1::integer[])) SELECT k.ord AS "__ord_2", t.* FROM unnest($1::integer[]) WITH ORDINALITY AS k(key, ord) JOIN found AS t ON t."user id" = k.key',
        values: [[1, 2]],
        name: expect.stringMatching(/^async_batcher_[0-9a-f]{40}_0$/),
      },
    ]);
    await batcher.stop();
  });
});
