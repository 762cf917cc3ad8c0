/**
 * `async-batcher/pg` against a real PostgreSQL (PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test): one statement per batch, returned rows matched to
 * their callers (split batches, identical rows, generated keys), upserts, failure isolation in a
 * batch of 1,000 (the driver's SQLSTATE, 999 rows in the table), hostile identifiers and values,
 * loads by int4, int8, uuid and text keys, prepared statements (and a table altered under them),
 * and the pool left open. Every test makes its own tables and drops them.
 */
import { InvalidInputError, PgInsertBatcher, PgLoadBatcher, type PgPool } from "async-batcher/pg";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: URL, max: 8 });
  pool.on("error", () => {}); // an idle client's error must not crash the run
  try {
    await pool.query("SELECT 1");
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Error(
      `cannot reach PostgreSQL at ${URL} (set PG_URL to point elsewhere): ${(error as Error).message}. ` +
        "Start PostgreSQL (see DEVELOPERS.md: `docker run -d -p 127.0.0.1:5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15`, or `sudo service postgresql start`).",
      { cause: error },
    );
  }
});

afterAll(async () => {
  await pool?.end();
});

/** Objects to drop after each test, most recent first: `TABLE x` or `SCHEMA x CASCADE`. */
const created: string[] = [];
afterEach(async () => {
  while (created.length > 0) {
    const what = created.pop() as string;
    await pool.query(`DROP ${what}`);
  }
});

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const suffix = () => `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

/** Creates a uniquely named table from `columns` (SQL), dropped after the test. */
async function table(base: string, columns: string): Promise<string> {
  const name = `${base}_${suffix()}`;
  await pool.query(`CREATE TABLE ${q(name)} (${columns})`);
  created.push(`TABLE IF EXISTS ${q(name)}`);
  return name;
}

async function count(name: string): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${q(name)}`);
  return (rows[0] as { n: number }).n;
}

/** The pool, wrapped to record every statement it is given. */
function recording(): {
  pool: PgPool;
  texts: string[];
  values: unknown[][];
  names: (string | undefined)[];
  writes(): number;
} {
  const texts: string[] = [];
  const values: unknown[][] = [];
  const names: (string | undefined)[] = [];
  return {
    pool: {
      query(config) {
        texts.push(config.text);
        values.push(config.values);
        names.push(config.name);
        return pool.query(config);
      },
    },
    texts,
    values,
    names,
    writes: () => texts.filter((t) => /^(INSERT|WITH)\b/.test(t)).length,
  };
}

describe("PgInsertBatcher", () => {
  it("inserts each batch with one statement: 2,500 rows, 10 INSERTs of 250 (and one catalog read)", async () => {
    const t = await table("one_statement", "id bigserial PRIMARY KEY, n int NOT NULL, s text");
    const rec = recording();
    const batcher = new PgInsertBatcher({
      pool: rec.pool,
      table: t,
      columns: ["n", "s"],
      maxQueueTime: 50,
    });
    const rows = Array.from({ length: 2500 }, (_, n) => ({ n, s: `row ${n}` }));
    await Promise.all(rows.map((row) => batcher.process(row)));
    expect(rec.writes()).toBe(10);
    expect(rec.texts).toHaveLength(11);
    expect(new Set(rec.texts.slice(1)).size).toBe(1); // the same text for every batch
    await batcher.stop();
    expect(await count(t)).toBe(2500);
    const { rows: sums } = await pool.query(`SELECT sum(n)::int AS s FROM ${q(t)}`);
    expect((sums[0] as { s: number }).s).toBe((2499 * 2500) / 2);
  });

  it("returns each caller its own generated id and defaults, identical rows included", async () => {
    const t = await table(
      "returning",
      "id bigserial PRIMARY KEY, name text, created timestamptz NOT NULL DEFAULT now(), rank int DEFAULT 7",
    );
    const batcher = new PgInsertBatcher<
      { name: string },
      { id: string; name: string; rank: number }
    >({
      pool,
      table: t,
      columns: ["name"],
      returning: ["id", "name", "rank"],
    });
    const names = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? "same" : `n${i}`));
    const returned = await Promise.all(names.map((name) => batcher.process({ name })));
    returned.forEach((row, i) => {
      expect(row?.name).toBe(names[i]);
      expect(row?.rank).toBe(7);
    });
    expect(new Set(returned.map((r) => r?.id)).size).toBe(300);
    // The ids are those of the rows in the table.
    const { rows } = await pool.query(`SELECT id, name FROM ${q(t)}`);
    const byId = new Map(rows.map((r) => [String(r.id), r.name]));
    expect(returned.map((row) => byId.get(row?.id as string))).toEqual(names);
    await batcher.stop();
  });

  it("matches returned rows in a batch that was split around a bad row", async () => {
    const t = await table("returning_split", "id serial PRIMARY KEY, n int CHECK (n <> 500)");
    const batcher = new PgInsertBatcher<{ n: number }, { id: number; n: number }>({
      pool,
      table: t,
      columns: ["n"],
      returning: "*",
      maxQueueTime: 20,
    });
    const results = await Promise.allSettled(
      Array.from({ length: 1000 }, (_, n) => batcher.process({ n })),
    );
    const { rows } = await pool.query(`SELECT id, n FROM ${q(t)}`);
    const byId = new Map(rows.map((r) => [r.id as number, r.n as number]));
    expect(byId.size).toBe(999);
    results.forEach((result, n) => {
      if (n === 500) {
        expect(result.status).toBe("rejected");
        expect((result as PromiseRejectedResult).reason.code).toBe("23514");
      } else {
        const row = (result as PromiseFulfilledResult<{ id: number; n: number }>).value;
        expect(row.n).toBe(n);
        expect(byId.get(row.id)).toBe(n);
      }
    });
    await batcher.stop();
  });

  it("matches on an identity ALWAYS key (OVERRIDING SYSTEM VALUE), a uuid default, a configured composite key", async () => {
    const identity = await table(
      "identity",
      "id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text NOT NULL",
    );
    const uuid = await table("uuid", "id uuid PRIMARY KEY DEFAULT gen_random_uuid(), v text");
    const composite = await table("composite", "a int, b text, v text, PRIMARY KEY (b, a)");
    for (const [t, columns] of [
      [identity, ["v"]],
      [uuid, ["v"]],
      [composite, ["a", "b", "v"]],
    ] as const) {
      const batcher = new PgInsertBatcher<Record<string, unknown>, Record<string, unknown>>({
        pool,
        table: t,
        columns,
        returning: "*",
      });
      const inputs = Array.from({ length: 50 }, (_, i) => ({ a: i, b: `b${i % 5}`, v: `v${i}` }));
      const rows = await Promise.all(
        inputs.map((input) =>
          batcher.process(Object.fromEntries(columns.map((c) => [c, input[c]]))),
        ),
      );
      const { rows: stored } = await pool.query(`SELECT * FROM ${q(t)}`);
      expect(stored).toHaveLength(50);
      rows.forEach((row, i) => {
        expect(row?.v).toBe(`v${i}`);
        expect(stored.find((s) => s.v === `v${i}`)).toEqual(row);
      });
      await batcher.stop();
    }
  });

  it("rejects callers with a TypeError when returning has nothing to match on", async () => {
    const t = await table("no_key", "n int, s text");
    const batcher = new PgInsertBatcher({ pool, table: t, columns: ["n"], returning: "*" });
    await expect(batcher.process({ n: 1 })).rejects.toThrow(TypeError);
    await expect(batcher.process({ n: 1 })).rejects.toThrow(/returning needs a way to match/);
    expect(await count(t)).toBe(0);
    await batcher.stop();
  });

  describe("onConflict", () => {
    it("upserts; the same key twice in a batch is one row with the last values, both callers get it", async () => {
      const t = await table(
        "upsert",
        "id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text, visits int",
      );
      await pool.query(`INSERT INTO ${q(t)} (email, name, visits) VALUES ('a@x', 'old', 1)`);
      const rec = recording();
      const batcher = new PgInsertBatcher<
        { email: string; name: string; visits: number },
        { id: number; email: string; name: string; visits: number }
      >({
        pool: rec.pool,
        table: t,
        columns: ["email", "name", "visits"],
        onConflict: { target: ["email"], action: "update", set: ["name", "visits"] },
        returning: "*",
      });
      const rows = await Promise.all([
        batcher.process({ email: "a@x", name: "first", visits: 2 }),
        batcher.process({ email: "b@x", name: "new", visits: 1 }),
        batcher.process({ email: "a@x", name: "last", visits: 3 }),
      ]);
      expect(rec.writes()).toBe(1);
      expect(rows[0]).toEqual({ id: 1, email: "a@x", name: "last", visits: 3 });
      expect(rows[2]).toEqual(rows[0]);
      expect(rows[1]).toMatchObject({ email: "b@x", name: "new", visits: 1 });
      const { rows: stored } = await pool.query(
        `SELECT email, name, visits FROM ${q(t)} ORDER BY email`,
      );
      expect(stored).toEqual([
        { email: "a@x", name: "last", visits: 3 },
        { email: "b@x", name: "new", visits: 1 },
      ]);
      await batcher.stop();

      // Without returning, and the default set (every column not in target).
      const plain = new PgInsertBatcher({
        pool,
        table: t,
        columns: ["email", "name", "visits"],
        onConflict: { target: ["email"], action: "update" },
      });
      await Promise.all([
        plain.process({ email: "b@x", name: "x", visits: 5 }),
        plain.process({ email: "b@x", name: "y", visits: 6 }),
        plain.process({ email: "c@x", name: "c" }),
      ]);
      const { rows: after } = await pool.query(
        `SELECT email, name, visits FROM ${q(t)} ORDER BY email`,
      );
      expect(after).toEqual([
        { email: "a@x", name: "last", visits: 3 },
        { email: "b@x", name: "y", visits: 6 },
        { email: "c@x", name: "c", visits: null },
      ]);
      await plain.stop();
    });

    it("does nothing on conflict: a skipped caller resolves null, the first of a batch's duplicates wins", async () => {
      const t = await table("nothing", "id serial PRIMARY KEY, k text UNIQUE, v text");
      await pool.query(`INSERT INTO ${q(t)} (k, v) VALUES ('old', 'kept')`);
      const batcher = new PgInsertBatcher<
        { k: string; v: string },
        { id: number; k: string; v: string }
      >({
        pool,
        table: t,
        columns: ["k", "v"],
        onConflict: { target: ["k"], action: "nothing" },
        returning: ["id", "k", "v"],
      });
      const rows = await Promise.all([
        batcher.process({ k: "old", v: "ignored" }),
        batcher.process({ k: "dup", v: "first" }),
        batcher.process({ k: "dup", v: "second" }),
        batcher.process({ k: "new", v: "new" }),
      ]);
      expect(rows[0]).toBeNull();
      expect(rows[1]).toMatchObject({ k: "dup", v: "first" });
      expect(rows[2]).toBeNull();
      expect(rows[3]).toMatchObject({ k: "new", v: "new" });
      const { rows: stored } = await pool.query(`SELECT k, v FROM ${q(t)} ORDER BY k`);
      expect(stored).toEqual([
        { k: "dup", v: "first" },
        { k: "new", v: "new" },
        { k: "old", v: "kept" },
      ]);
      // Without returning: skipped rows are no error.
      const plain = new PgInsertBatcher({
        pool,
        table: t,
        columns: ["k"],
        onConflict: { target: ["k"], action: "nothing" },
      });
      expect(await Promise.all([plain.process({ k: "old" }), plain.process({ k: "z" })])).toEqual([
        undefined,
        undefined,
      ]);
      expect(await count(t)).toBe(4);
      await Promise.all([batcher.stop(), plain.stop()]);
    });
  });

  describe("failure isolation: one bad row among 1,000", () => {
    it.each([
      { what: "a unique violation", code: "23505", bad: { n: 0, s: "taken" } },
      { what: "a check constraint", code: "23514", bad: { n: -1, s: "x" } },
      { what: "a bad value", code: "22P02", bad: { n: "not a number", s: "x" } },
      {
        what: "a value too long (no silent truncation)",
        code: "22001",
        bad: { n: 0, s: "0123456789ABC" },
      },
      { what: "a NUL in a text value", code: "22021", bad: { n: 0, s: "a\0b" } },
    ])(
      "$what: exactly that caller rejects with SQLSTATE $code; 999 rows are inserted",
      async ({ code, bad }) => {
        const t = await table(
          "isolation",
          "id serial PRIMARY KEY, n int CHECK (n >= 0), s varchar(12) UNIQUE",
        );
        await pool.query(`INSERT INTO ${q(t)} (n, s) VALUES (0, 'taken')`);
        const rec = recording();
        const batcher = new PgInsertBatcher<Record<string, unknown>>({
          pool: rec.pool,
          table: t,
          columns: ["n", "s"],
          maxQueueTime: 50,
        });
        const rows: Record<string, unknown>[] = Array.from({ length: 1000 }, (_, n) => ({
          n,
          s: `r${n}`,
        }));
        rows[637] = bad;
        const results = await Promise.allSettled(rows.map((row) => batcher.process(row)));
        const rejected = results.flatMap((r, i) =>
          r.status === "rejected" ? [[i, r.reason]] : [],
        );
        expect(rejected).toHaveLength(1);
        const [index, error] = rejected[0] as [number, pg.DatabaseError];
        expect(index).toBe(637);
        expect(error).toBeInstanceOf(pg.DatabaseError);
        expect(error.code).toBe(code);
        expect(await count(t)).toBe(1 + 999);
        // One failed statement of 1,000, then halves: about 2·log2(1000) more.
        expect(rec.writes()).toBeLessThanOrEqual(1 + 2 * 10);
        await batcher.stop();
      },
    );
  });

  it("quotes hostile identifiers and sends hostile values as parameters", async () => {
    const schema = `s"; DROP SCHEMA public; -- ${suffix()}`;
    await pool.query(`CREATE SCHEMA ${q(schema)}`);
    created.push(`SCHEMA ${q(schema)} CASCADE`);
    const name = `t "x"; DROP TABLE y; --🎉`;
    const columns = ['k"ey', "semi;colon -- dash", "ünïcødé 🎉", "MixedCase", "bytes", "back`tick"];
    await pool.query(
      `CREATE TABLE ${q(schema)}.${q(name)} (${q("id")} serial PRIMARY KEY, ${q('k"ey')} text UNIQUE, ${q("semi;colon -- dash")} text, ${q("ünïcødé 🎉")} text, ${q("MixedCase")} int, ${q("bytes")} bytea, ${q("back`tick")} text)`,
    );
    const values = [
      `'; DROP TABLE x; --`,
      `"quoted" \\ back\\slash`,
      "{a,b}",
      "NULL",
      "",
      "  spaced  ",
      "日本語 🎉👩‍👩‍👧",
      "$1 $2 ::int",
      "line\nbreak\ttab",
    ];
    const batcher = new PgInsertBatcher<Record<string, unknown>, Record<string, unknown>>({
      pool,
      table: { schema, name },
      columns,
      returning: "*",
    });
    const rows = values.map((v, i) => ({
      'k"ey': v,
      "semi;colon -- dash": v,
      "ünïcødé 🎉": `${v}!`,
      MixedCase: i,
      bytes: Buffer.from([0, i, 0, 255]),
      "back`tick": `\`${v}\``,
    }));
    const returned = await Promise.all(rows.map((row) => batcher.process(row)));
    returned.forEach((row, i) => {
      expect(row).toMatchObject(rows[i] as Record<string, unknown>);
      expect(row?.bytes).toEqual(Buffer.from([0, i, 0, 255]));
    });
    // A field that is not a column rejects alone; a NUL in text rejects alone; NUL in bytea works.
    const more = await Promise.allSettled([
      batcher.process({ 'k"ey': "x", nope: 1 }),
      batcher.process({ 'k"ey': "nul\0here" }),
      batcher.process({ 'k"ey': "fine", bytes: Buffer.from("a\0b") }),
    ]);
    expect(more[0]).toMatchObject({ status: "rejected", reason: { reason: "column" } });
    expect((more[0] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
    expect(more[1]).toMatchObject({ status: "rejected", reason: { code: "22021" } });
    expect(more[2]).toMatchObject({ status: "fulfilled", value: { bytes: Buffer.from("a\0b") } });
    await batcher.stop();

    // And read back through the hostile key column.
    const loader = new PgLoadBatcher<string, Record<string, unknown>>({
      pool,
      table: { schema, name },
      key: 'k"ey',
    });
    const loaded = await Promise.all([...values, "missing"].map((v) => loader.process(v)));
    expect(loaded.slice(0, values.length)).toEqual(returned);
    expect(loaded.at(-1)).toBeNull();
    await loader.stop();
    const { rows: stored } = await pool.query(
      `SELECT count(*)::int AS n FROM ${q(schema)}.${q(name)}`,
    );
    expect((stored[0] as { n: number }).n).toBe(values.length + 1);
  });

  it("inserts array columns with the VALUES form (nested arrays kept), capped at 65,535 parameters", async () => {
    const extra = Array.from({ length: 39 }, (_, i) => `c${i} int`).join(", ");
    const t = await table("arrays", `id serial PRIMARY KEY, tags int[], doc jsonb, ${extra}`);
    const rec = recording();
    const columns = ["tags", "doc", ...Array.from({ length: 39 }, (_, i) => `c${i}`)];
    const batcher = new PgInsertBatcher<
      Record<string, unknown>,
      { id: number; tags: unknown; doc: unknown }
    >({
      pool: rec.pool,
      table: t,
      columns,
      returning: ["id", "tags", "doc"],
      maxBatchSize: 2000,
      maxQueueTime: 50,
    });
    const rows = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        batcher.process({
          tags: i % 2 === 0 ? [i, i + 1] : [[i], [i + 1]],
          doc: [i, { i }],
          c0: i,
        }),
      ),
    );
    rows.forEach((row, i) => {
      expect(row?.tags).toEqual(i % 2 === 0 ? [i, i + 1] : [[i], [i + 1]]);
      expect(row?.doc).toEqual([i, { i }]);
    });
    expect(await count(t)).toBe(2000);
    // 41 columns: at most 1,598 rows per statement. The first batch, cut at 2,000 rows before the
    // table was read, was halved before anything was sent: two statements of 1,000 rows.
    expect(rec.writes()).toBe(2);
    for (const values of rec.values.slice(1)) expect(values.length).toBe(41_000);
    await batcher.stop();
  });

  it("drains on stop() and leaves the pool open", async () => {
    const t = await table("stop", "n int");
    const batcher = new PgInsertBatcher({
      pool,
      table: t,
      columns: ["n"],
      maxQueueTime: Number.POSITIVE_INFINITY,
    });
    const pending = Array.from({ length: 300 }, (_, n) => batcher.process({ n }));
    await batcher.stop();
    expect(await Promise.all(pending)).toHaveLength(300);
    expect(await count(t)).toBe(300);
    expect(pool.ending).toBe(false);
    expect(pool.totalCount).toBeGreaterThan(0);
    expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });
});

describe("PgLoadBatcher", () => {
  it.each([
    { type: "int4", keys: [1, 2, 3], asked: [1, "2", 3, 4] },
    { type: "int8", keys: ["9007199254740993", "2", "3"], asked: [9007199254740993n, 2, "3", 4n] },
    {
      type: "uuid",
      keys: [
        "0b5e3d0c-1c1e-4f5e-9a4b-1f0e2d3c4b5a",
        "7f1c2b3a-4d5e-6f70-8192-a3b4c5d6e7f8",
        "00000000-0000-0000-0000-000000000001",
      ],
      asked: [
        "0B5E3D0C-1C1E-4F5E-9A4B-1F0E2D3C4B5A",
        "7f1c2b3a-4d5e-6f70-8192-a3b4c5d6e7f8",
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
      ],
    },
    { type: "text", keys: ["a", "'; --", "🎉"], asked: ["a", "'; --", "🎉", "A"] },
  ])(
    "loads by a $type key, whatever JS type the key is given in; a missing key is null",
    async ({ type, keys, asked }) => {
      const t = await table(`load_${type}`, `k ${type} PRIMARY KEY, v text`);
      await pool.query(
        `INSERT INTO ${q(t)} (k, v) SELECT k, 'v' || ord FROM unnest($1::${type}[]) WITH ORDINALITY AS u(k, ord)`,
        [keys],
      );
      const rec = recording();
      const loader = new PgLoadBatcher<unknown, { k: unknown; v: string }>({
        pool: rec.pool,
        table: t,
        key: "k",
      });
      const rows = await Promise.all(asked.map((key) => loader.process(key)));
      expect(rows.map((row) => row?.v ?? null)).toEqual(["v1", "v2", "v3", null]);
      expect(rec.texts.filter((text) => text.startsWith("WITH found AS"))).toHaveLength(1);
      await loader.stop();
    },
  );

  it("fetches a key asked for twice in a batch once, with one query", async () => {
    const t = await table("load_dupes", "id int PRIMARY KEY, v text");
    await pool.query(`INSERT INTO ${q(t)} SELECT g, 'v' || g FROM generate_series(1, 100) g`);
    const rec = recording();
    const loader = new PgLoadBatcher<number, { id: number; v: string }>({
      pool: rec.pool,
      table: t,
      key: "id",
      columns: ["v"],
      maxBatchSize: 1000, // one batch for the 120 distinct keys
    });
    const keys = Array.from({ length: 500 }, (_, i) => (i % 120) + 1);
    const rows = await Promise.all(keys.map((k) => loader.process(k)));
    expect(rows).toEqual(keys.map((k) => (k <= 100 ? { v: `v${k}` } : null)));
    const loads = rec.values.filter((_, i) => rec.texts[i]?.startsWith("WITH found AS"));
    expect(loads).toHaveLength(1);
    expect(loads[0]?.[0]).toHaveLength(120);
    await loader.stop();
  });

  it("loads with a query taking the keys as $1, matched by String(key)", async () => {
    const t = await table("load_query", "id bigint PRIMARY KEY, v text");
    await pool.query(`INSERT INTO ${q(t)} VALUES (1, 'one'), (2, 'two')`);
    const loader = new PgLoadBatcher<number | bigint | string, { id: string; v: string }>({
      pool,
      query: `SELECT id, v FROM ${q(t)} WHERE id = ANY($1::bigint[])`,
      key: "id",
    });
    const rows = await Promise.all([1, 2n, "1", 3].map((k) => loader.process(k)));
    expect(rows).toEqual([
      { id: "1", v: "one" },
      { id: "2", v: "two" },
      { id: "1", v: "one" },
      null,
    ]);
    await loader.stop();
  });

  it("rejects only the key its type cannot hold (22P02), and a key with several rows (RangeError)", async () => {
    const t = await table("load_bad", "id int, v text");
    await pool.query(`INSERT INTO ${q(t)} VALUES (1, 'a'), (2, 'b'), (2, 'c')`);
    const loader = new PgLoadBatcher<unknown>({ pool, table: t, key: "id" });
    const results = await Promise.allSettled([1, "x", 2, 3].map((k) => loader.process(k)));
    expect(results[0]).toEqual({ status: "fulfilled", value: { id: 1, v: "a" } });
    expect(results[1]).toMatchObject({ status: "rejected", reason: { code: "22P02" } });
    expect(results[2]).toMatchObject({ status: "rejected" });
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(RangeError);
    expect(results[3]).toEqual({ status: "fulfilled", value: null });
    await loader.stop();
    expect(pool.ending).toBe(false);
  });
});

describe("prepared statements", () => {
  /** A connection of its own, as the batchers' pool: its prepared statements can be listed. */
  async function client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: URL });
    await c.connect();
    return c;
  }

  /** The statements prepared on that connection. */
  async function preparedOn(c: pg.Client): Promise<string[]> {
    const { rows } = await c.query<{ name: string }>(
      "SELECT name FROM pg_prepared_statements ORDER BY name",
    );
    return rows.map((r) => r.name);
  }

  it("each connection prepares the batcher's statement once; prepare: false prepares nothing", async () => {
    const t = await table("prep", "id int PRIMARY KEY, v text");
    await pool.query(`INSERT INTO ${q(t)} SELECT g, 'v' || g FROM generate_series(1, 10) g`);
    const c = await client();
    try {
      const loader = new PgLoadBatcher<number>({ pool: c, table: t, key: "id" });
      const writer = new PgInsertBatcher({ pool: c, table: t, columns: ["id", "v"] });
      for (let i = 1; i <= 3; i++) expect(await loader.process(i)).toEqual({ id: i, v: `v${i}` });
      await writer.process({ id: 11, v: "x" });
      await writer.process({ id: 12, v: "y" });
      const names = await preparedOn(c);
      expect(names).toHaveLength(2);
      for (const name of names) expect(name).toMatch(/^async_batcher_[0-9a-f]{40}_0$/);
      await Promise.all([loader.stop(), writer.stop()]);

      const c2 = await client();
      try {
        const plain = new PgLoadBatcher<number>({ pool: c2, table: t, key: "id", prepare: false });
        expect(await plain.process(12)).toEqual({ id: 12, v: "y" });
        expect(await preparedOn(c2)).toEqual([]);
        await plain.stop();
      } finally {
        await c2.end();
      }
    } finally {
      await c.end();
    }
  });

  it("a table changed under a prepared statement: the next batch reads it again and goes on, no caller fails", async () => {
    const t = await table("prep_alter", "id int PRIMARY KEY, v text");
    await pool.query(`INSERT INTO ${q(t)} VALUES (1, 'a'), (2, 'b')`);
    const c = await client();
    try {
      const loader = new PgLoadBatcher<number>({ pool: c, table: t, key: "id" });
      const writer = new PgInsertBatcher<Record<string, unknown>, Record<string, unknown>>({
        pool: c,
        table: t,
        columns: ["id", "v"],
        returning: "*",
      });
      expect(await loader.process(1)).toEqual({ id: 1, v: "a" });
      expect(await writer.process({ id: 3, v: "c" })).toEqual({ id: 3, v: "c" });
      // A new column changes what `*` returns: the prepared plans no longer fit.
      await pool.query(`ALTER TABLE ${q(t)} ADD COLUMN w int NOT NULL DEFAULT 7`);
      expect(await loader.process(2)).toEqual({ id: 2, v: "b", w: 7 });
      expect(await writer.process({ id: 4, v: "d" })).toEqual({ id: 4, v: "d", w: 7 });
      // A column's type changes: again.
      await pool.query(`ALTER TABLE ${q(t)} ALTER COLUMN w TYPE bigint`);
      expect(await loader.process(3)).toEqual({ id: 3, v: "c", w: "7" });
      expect(await writer.process({ id: 5, v: "e" })).toEqual({ id: 5, v: "e", w: "7" });
      const names = await preparedOn(c);
      expect(names.map((n) => n.slice(-2)).sort()).toEqual(["_0", "_0", "_1", "_1", "_2", "_2"]);
      await Promise.all([loader.stop(), writer.stop()]);
    } finally {
      await c.end();
    }
  });

  it("the query form: a `SELECT *` query survives a new column too", async () => {
    const t = await table("prep_query", "id int PRIMARY KEY, v text");
    await pool.query(`INSERT INTO ${q(t)} VALUES (1, 'a')`);
    const c = await client();
    try {
      const loader = new PgLoadBatcher<number>({
        pool: c,
        query: `SELECT * FROM ${q(t)} WHERE id = ANY($1::int[])`,
        key: "id",
      });
      expect(await loader.process(1)).toEqual({ id: 1, v: "a" });
      await pool.query(`ALTER TABLE ${q(t)} ADD COLUMN w text`);
      expect(await loader.process(1)).toEqual({ id: 1, v: "a", w: null });
      await loader.stop();
    } finally {
      await c.end();
    }
  });
});
