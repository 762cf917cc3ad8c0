/**
 * `async-batcher/mysql` against a real MariaDB (or MySQL) on loopback: `MYSQL_URL`, by default
 * mysql://root@127.0.0.1:3306/test. Every test makes its own tables (random names) and drops
 * them; the pools are the test's, closed at the end, never by a batcher.
 */

import { ItemTooLargeError } from "async-batcher";
import {
  InvalidInputError,
  type MysqlConnection,
  MysqlInsertBatcher,
  type MysqlInsertResult,
  MysqlLoadBatcher,
  type MysqlPool,
} from "async-batcher/mysql";
import mysql, { type Pool, type QueryOptions, type RowDataPacket } from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const URL = process.env.MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

let pool: Pool;
/** Tables made by the current test, dropped after it. */
const tables: string[] = [];

const quote = (name: string) => `\`${name.replaceAll("`", "``")}\``;
const suffix = () => Math.random().toString(36).slice(2, 10);

/** A table of its own for the test, created with `columns` (SQL), InnoDB. */
async function table(columns: string, name = `ab_${suffix()}`): Promise<string> {
  tables.push(name);
  await pool.query(`CREATE TABLE ${quote(name)} (${columns}) ENGINE=InnoDB`);
  return name;
}

async function count(name: string, where = "1"): Promise<number> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM ${quote(name)} WHERE ${where}`,
  );
  return Number(rows[0]?.n);
}

/**
 * The pool, wrapped so that the statements the batchers run are counted (the server-variables
 * query apart).
 */
function counting(inner: Pool): { pool: MysqlPool; statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    pool: {
      async getConnection(): Promise<MysqlConnection> {
        const connection = await inner.getConnection();
        return {
          execute: (statement, values) => {
            if (!statement.sql.startsWith("SELECT @@max_allowed_packet")) {
              statements.push(statement.sql);
            }
            return connection.execute(statement as QueryOptions, values);
          },
          unprepare: (statement) => connection.unprepare(statement as QueryOptions),
          release: () => connection.release(),
        };
      },
    },
  };
}

beforeAll(async () => {
  pool = mysql.createPool({ uri: URL, connectionLimit: 8 });
  try {
    await pool.query("SELECT 1");
  } catch (error) {
    await pool.end().catch(() => {});
    throw new Error(
      `cannot reach MariaDB/MySQL at ${URL} (set MYSQL_URL to use another server): start it (see DEVELOPERS.md: \`sudo service mariadb start\`, or \`docker run -d -p 127.0.0.1:3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 -e MARIADB_DATABASE=test mariadb:10.11\`)`,
      { cause: error },
    );
  }
});

afterEach(async () => {
  for (const name of tables.splice(0)) await pool.query(`DROP TABLE IF EXISTS ${quote(name)}`);
});

afterAll(async () => {
  await pool?.end();
});

describe("MysqlInsertBatcher", () => {
  it("inserts 1,000 rows with one statement, each caller getting its own row's id", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(50) NOT NULL, n INT");
    const counted = counting(pool);
    const batcher = new MysqlInsertBatcher({
      pool: counted.pool,
      table: t,
      columns: ["email", "n"],
      maxBatchSize: 1000,
    });
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => batcher.process({ email: `u${i}@x`, n: i })),
    );
    expect(counted.statements).toHaveLength(1);
    expect(counted.statements[0]).toMatch(
      /^INSERT INTO `ab_\w+` \(`email`, `n`\) VALUES \(\?,\?\),/,
    );
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT id, email FROM ${quote(t)}`);
    const ids = new Map(rows.map((r) => [r.email as string, r.id as number]));
    expect(ids.size).toBe(1000);
    results.forEach((result, i) => {
      expect(result.insertId).toBe(ids.get(`u${i}@x`));
      expect(result.affectedRows).toBe(1);
      expect(result.statement.rows).toBe(1000);
    });
    await batcher.stop();
  });

  it("matches ids under concurrency, across split batches, with auto_increment_increment", async () => {
    const t = await table(
      "id BIGINT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(50) NOT NULL UNIQUE",
    );
    await pool.query(`INSERT INTO ${quote(t)} (email) VALUES ('taken')`);
    // auto_increment_increment is a session variable: every connection of this pool steps by 3.
    const stepped = mysql.createPool({ uri: URL, connectionLimit: 4 });
    stepped.on("connection", (connection) => {
      connection.query("SET SESSION auto_increment_increment = 3");
    });
    try {
      const batcher = new MysqlInsertBatcher({
        pool: stepped,
        table: t,
        columns: ["email"],
        maxBatchSize: 500,
      });
      const input = Array.from({ length: 3000 }, (_, i) => ({
        email: i % 701 === 700 ? "taken" : `u${i}`,
      }));
      const results = await Promise.allSettled(input.map((r) => batcher.process(r)));
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT id, email FROM ${quote(t)}`);
      const ids = new Map(rows.map((r) => [r.email as string, Number(r.id)]));
      let rejected = 0;
      results.forEach((result, i) => {
        if (result.status === "rejected") {
          rejected++;
          expect(result.reason.code).toBe("ER_DUP_ENTRY");
          expect(input[i]?.email).toBe("taken");
        } else {
          expect(result.value.insertId).toBe(ids.get(input[i]?.email as string));
        }
      });
      expect(rejected).toBe(4);
      await batcher.stop();
    } finally {
      await stepped.end();
    }
  });

  it("gives no insertId for a MyISAM table, or for a statement with explicit ids", async () => {
    const myisam = `ab_${suffix()}`;
    tables.push(myisam);
    await pool.query(
      `CREATE TABLE ${quote(myisam)} (id INT AUTO_INCREMENT PRIMARY KEY, a INT) ENGINE=MyISAM`,
    );
    const onMyisam = new MysqlInsertBatcher({ pool, table: myisam, columns: ["a"] });
    expect((await onMyisam.process({ a: 1 })).insertId).toBeUndefined();
    const t = await table("ID INT AUTO_INCREMENT PRIMARY KEY, a INT");
    const explicit = new MysqlInsertBatcher({ pool, table: t, columns: ["id", "a"] });
    const results = await Promise.all([
      explicit.process({ a: 1 }),
      explicit.process({ id: 100, a: 2 }),
    ]);
    expect(results.map((r) => r.insertId)).toEqual([undefined, undefined]);
    expect((await explicit.process({ a: 3 })).insertId).toBe(101);
  });

  it("keeps the prepared statements of a full batch and of small batches, and closes the others", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, a INT");
    const single = mysql.createPool({ uri: URL, connectionLimit: 1 });
    try {
      const status = async () => {
        const [rows] = await single.query<RowDataPacket[]>(
          "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')",
        );
        return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
      };
      const batcher = new MysqlInsertBatcher({
        pool: single,
        table: t,
        columns: ["a"],
        maxBatchSize: 12,
      });
      await batcher.process({ a: 0 }); // the server-variables query, prepared and closed
      const before = await status();
      const insert = (n: number) =>
        Promise.all(Array.from({ length: n }, (_, a) => batcher.process({ a })));
      await insert(12 + 10); // 12 (full) + 10
      await insert(12 + 2); // 12 again + 2
      await insert(2 + 0); // 2 again
      await insert(10); // 10 again
      const after = await status();
      // Prepared: 12 once, 2 once (both kept), 10 twice (closed after each use).
      expect(after.Com_stmt_prepare - before.Com_stmt_prepare).toBe(4);
      expect(after.Com_stmt_close - before.Com_stmt_close).toBe(2);
      expect(await count(t)).toBe(1 + 22 + 14 + 2 + 10);
      await batcher.stop();
    } finally {
      await single.end();
    }
  });

  it("upserts with ON DUPLICATE KEY UPDATE c = VALUES(c), with no insertId", async () => {
    const t = await table("id INT PRIMARY KEY, name VARCHAR(20), hits INT");
    await pool.query(`INSERT INTO ${quote(t)} VALUES (1, 'old', 1), (2, 'keep', 5)`);
    const batcher = new MysqlInsertBatcher({
      pool,
      table: t,
      columns: ["id", "name", "hits"],
      onDuplicateKeyUpdate: ["name"],
    });
    const results = await Promise.all([
      batcher.process({ id: 1, name: "new", hits: 100 }),
      batcher.process({ id: 3, name: "third", hits: 3 }),
    ]);
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT * FROM ${quote(t)} ORDER BY id`);
    expect(rows).toEqual([
      { id: 1, name: "new", hits: 1 },
      { id: 2, name: "keep", hits: 5 },
      { id: 3, name: "third", hits: 3 },
    ]);
    expect(results.map((r) => r.insertId)).toEqual([undefined, undefined]);
    expect(results[0]?.statement.affectedRows).toBe(3); // 2 for the update, 1 for the insert

    const all = new MysqlInsertBatcher({
      pool,
      table: t,
      columns: ["id", "name", "hits"],
      onDuplicateKeyUpdate: true,
    });
    const [alone] = await Promise.all([all.process({ id: 2, name: "all", hits: 9 })]);
    expect(alone?.affectedRows).toBe(2);
    expect(await count(t, "id = 2 AND name = 'all' AND hits = 9")).toBe(1);
    await batcher.stop();
    await all.stop();
  });

  it("INSERT IGNORE skips duplicates without rejecting anyone", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(20) UNIQUE");
    await pool.query(`INSERT INTO ${quote(t)} (email) VALUES ('a')`);
    const batcher = new MysqlInsertBatcher({ pool, table: t, columns: ["email"], ignore: true });
    const results = await Promise.all(["a", "b", "c"].map((email) => batcher.process({ email })));
    expect(results.map((r) => [r.insertId, r.affectedRows])).toEqual([
      [undefined, undefined],
      [undefined, undefined],
      [undefined, undefined],
    ]);
    expect(results[0]?.statement).toMatchObject({ rows: 3, affectedRows: 2, warnings: 1 });
    expect(await count(t)).toBe(3);
  });

  describe("one bad row among 1,000: exactly that caller rejects, the 999 others are inserted", () => {
    const cases: {
      kind: string;
      bad: Record<string, unknown>;
      errno: number;
      sqlState: string;
      code?: string;
    }[] = [
      {
        kind: "a duplicate key",
        bad: { email: "taken" },
        errno: 1062,
        sqlState: "23000",
        code: "ER_DUP_ENTRY",
      },
      // MariaDB's ER_CONSTRAINT_FAILED is 4025 (mysql2 names codes after MySQL's numbers, where
      // 4025 is something else: match MariaDB's on errno); MySQL's is 3819.
      { kind: "a check constraint", bad: { age: -1 }, errno: 4025, sqlState: "23000" },
      {
        kind: "a value too long",
        bad: { code: "toolong" },
        errno: 1406,
        sqlState: "22001",
        code: "ER_DATA_TOO_LONG",
      },
      {
        kind: "a bad value in strict mode",
        bad: { age: "abc" },
        errno: 1366,
        sqlState: "22007",
        code: "ER_TRUNCATED_WRONG_VALUE_FOR_FIELD",
      },
      {
        kind: "NULL in a NOT NULL column",
        bad: { email: null },
        errno: 1048,
        sqlState: "23000",
        code: "ER_BAD_NULL_ERROR",
      },
    ];

    it.each(cases)("$kind", async ({ bad, errno, sqlState, code }) => {
      const t = await table(
        "id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(50) NOT NULL UNIQUE, age INT CHECK (age >= 0), code VARCHAR(5)",
      );
      await pool.query(`INSERT INTO ${quote(t)} (email) VALUES ('taken')`);
      const counted = counting(pool);
      const batcher = new MysqlInsertBatcher({
        pool: counted.pool,
        table: t,
        columns: ["email", "age", "code"],
      });
      const input: Record<string, unknown>[] = Array.from({ length: 1000 }, (_, i) => ({
        email: `u${i}`,
        age: i,
        code: "ok",
      }));
      input[613] = { ...input[613], ...bad };
      const results = await Promise.allSettled(input.map((row) => batcher.process(row)));
      const rejected = results.flatMap((r, i) =>
        r.status === "rejected" ? [{ i, error: r.reason }] : [],
      );
      expect(rejected.map((r) => r.i)).toEqual([613]);
      const error = rejected[0]?.error;
      expect(error).toBeInstanceOf(Error);
      expect(error.errno).toBe(errno);
      expect(error.sqlState).toBe(sqlState);
      if (code !== undefined) expect(error.code).toBe(code);
      expect(await count(t, "email LIKE 'u%'")).toBe(999);
      // Bisection: about 2·log2(1000) statements, not 1000.
      expect(counted.statements.length).toBeLessThanOrEqual(22);
      await batcher.stop();
    });
  });

  it("keeps statements under maxAllowedPacket, and rejects a row larger than it alone", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, body TEXT, data BLOB");
    const counted = counting(pool);
    const batcher = new MysqlInsertBatcher({
      pool: counted.pool,
      table: t,
      columns: ["body", "data"],
      maxAllowedPacket: 16 * 1024,
    });
    const rows = Array.from({ length: 60 }, (_, i) => ({
      body: `${i}:${"é".repeat(500)}`, // 1,000+ bytes in UTF-8 for 500+ characters
      data: Buffer.alloc(1000, i),
    }));
    const results = await Promise.allSettled([
      ...rows.map((row) => batcher.process(row)),
      batcher.process({ body: "x".repeat(20_000) }),
    ]);
    expect(results.slice(0, 60).every((r) => r.status === "fulfilled")).toBe(true);
    expect((results[60] as PromiseRejectedResult).reason).toBeInstanceOf(ItemTooLargeError);
    expect(counted.statements.length).toBeGreaterThanOrEqual(5);
    expect(await count(t)).toBe(60);
    const values = results
      .slice(0, 60)
      .map((r) => (r as PromiseFulfilledResult<MysqlInsertResult>).value.insertId);
    expect(new Set(values).size).toBe(60);
  });

  it("reads max_allowed_packet from the server and fills statements up to it", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, body MEDIUMTEXT");
    const [[vars]] = await pool.query<RowDataPacket[]>("SELECT @@max_allowed_packet AS p");
    const packet = Number(vars?.p);
    const counted = counting(pool);
    const batcher = new MysqlInsertBatcher({ pool: counted.pool, table: t, columns: ["body"] });
    const mib = "é".repeat(512 * 1024); // 1 MiB in UTF-8
    // Each row weighs 1 MiB + 8 bytes (length prefix, per-value bytes); 2 KiB go to the
    // statement's own bytes and the margin.
    const perStatement = Math.floor((packet - 2048) / (1024 * 1024 + 8));
    const n = 2 * perStatement + 3;
    const rowsOf = (sql: string) => sql.split("(?)").length - 1;
    // The first batch is cut before the server has told its limit: it is split (locally) to fit.
    await Promise.all(Array.from({ length: n }, () => batcher.process({ body: mib })));
    for (const sql of counted.statements) expect(rowsOf(sql)).toBeLessThanOrEqual(perStatement);
    // Later batches are cut to fit at once, as full as the packet allows.
    counted.statements.length = 0;
    await Promise.all(Array.from({ length: n }, () => batcher.process({ body: mib })));
    expect(counted.statements.map(rowsOf)).toEqual([perStatement, perStatement, 3]);
    expect(await count(t)).toBe(2 * n);
  });

  describe("hostile identifiers", () => {
    const names = [
      "we`ird",
      "x`; DROP TABLE t; --",
      'it\'s "quoted"',
      "back\\slash",
      "-- comment",
      "ünïcødé 中文",
      "dotted.name",
    ];

    it.each(names)("table and column named %j", async (name) => {
      const t = await table(
        `${quote("id")} INT AUTO_INCREMENT PRIMARY KEY, ${quote(name)} VARCHAR(50), ${quote(`${name}2`)} INT`,
        `ab_${suffix()}_${name}`.slice(0, 64).trimEnd(),
      );
      const batcher = new MysqlInsertBatcher({ pool, table: t, columns: [name, `${name}2`] });
      const [result] = await Promise.all([batcher.process({ [name]: name, [`${name}2`]: 7 })]);
      expect(result?.insertId).toBe(1);
      const loader = new MysqlLoadBatcher({ pool, table: t, key: name });
      expect(await loader.process(name)).toEqual({ id: 1, [name]: name, [`${name}2`]: 7 });
      const byId = new MysqlLoadBatcher({ pool, table: t, key: "id", columns: [`${name}2`] });
      expect(await byId.process(1)).toEqual({ [`${name}2`]: 7 });
    });

    it("a table in another database, as { schema, name }", async () => {
      const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, v INT");
      const [[db]] = await pool.query<RowDataPacket[]>("SELECT DATABASE() AS d");
      const batcher = new MysqlInsertBatcher({
        pool,
        table: { schema: db?.d as string, name: t },
        columns: ["v"],
      });
      expect((await batcher.process({ v: 1 })).insertId).toBe(1);
    });

    it("an emoji in a name is refused at construction, as the server would refuse it", async () => {
      expect(() => new MysqlInsertBatcher({ pool, table: "t😀", columns: ["a"] })).toThrow(
        TypeError,
      );
      expect(() => new MysqlLoadBatcher({ pool, table: "t", key: "k😀" })).toThrow(TypeError);
      await expect(pool.query("CREATE TABLE `ab_😀` (a INT)")).rejects.toMatchObject({
        errno: 1300,
      });
    });
  });

  describe("hostile values, always parameters", () => {
    const values = [
      "it's",
      "\\",
      "\\'",
      "' OR 1=1 --",
      "\\' ); DROP TABLE x; -- ",
      'double "quotes" and `backticks`',
      "NUL\0in\0the middle",
      "emoji 😀👍🏽 and 中文",
      "\r\n\t\b\x1a",
      "",
    ];

    async function roundTrip(p: Pool): Promise<void> {
      const t = await table(
        "id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, b BLOB",
      );
      const batcher = new MysqlInsertBatcher({ pool: p, table: t, columns: ["s", "b"] });
      await Promise.all(values.map((s) => batcher.process({ s, b: Buffer.from(s) })));
      const blob = Buffer.from([0, 1, 0, 255, 39, 92, 0]);
      await batcher.process({ s: "blob", b: blob });
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT s, b FROM ${quote(t)} ORDER BY id`);
      expect(rows.map((r) => r.s)).toEqual([...values, "blob"]);
      expect(rows.map((r) => Buffer.from(r.b).toString())).toEqual([...values, blob.toString()]);
      expect(Buffer.compare(rows[values.length]?.b, blob)).toBe(0);
      // And found again by the load batcher, each value as its own key.
      const loader = new MysqlLoadBatcher<string, { s: string }>({
        pool: p,
        table: t,
        key: "s",
        columns: ["s"],
      });
      const found = await Promise.all(values.map((s) => loader.process(s)));
      expect(found.map((r) => r?.s)).toEqual(values);
    }

    it("round-trip exactly under the default sql_mode", async () => {
      await roundTrip(pool);
    });

    it("round-trip exactly under NO_BACKSLASH_ESCAPES, where client-side escaping breaks", async () => {
      const noBackslash = mysql.createPool({ uri: URL, connectionLimit: 2 });
      noBackslash.on("connection", (connection) => {
        connection.query("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')");
      });
      try {
        // Why the batchers use prepared statements: mysql2's query() escapes ' as \', which
        // this mode reads as a backslash and the end of the string.
        const t = await table("s VARCHAR(50)");
        await expect(
          noBackslash.query(`INSERT INTO ${quote(t)} (s) VALUES (?)`, ["it's"]),
        ).rejects.toMatchObject({ code: "ER_PARSE_ERROR" });
        await roundTrip(noBackslash);
      } finally {
        await noBackslash.end();
      }
    });
  });

  it("rejects a field that is not a column alone, before the database", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, a INT");
    const batcher = new MysqlInsertBatcher<Record<string, unknown>>({
      pool,
      table: t,
      columns: ["a"],
    });
    const [ok, bad] = await Promise.allSettled([
      batcher.process({ a: 1 }),
      batcher.process({ a: 2, "a`); DROP TABLE x; --": 3 }),
    ]);
    expect(ok.status).toBe("fulfilled");
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
    expect((bad as PromiseRejectedResult).reason.reason).toBe("column");
    expect(await count(t)).toBe(1);
  });

  it("stop() drains what is queued and leaves the pool open", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, a INT");
    const own = mysql.createPool({ uri: URL, connectionLimit: 2 });
    const batcher = new MysqlInsertBatcher({
      pool: own,
      table: t,
      columns: ["a"],
      maxQueueTime: 60_000,
    });
    const pending = Array.from({ length: 50 }, (_, a) => batcher.process({ a }));
    await batcher.stop();
    await expect(Promise.all(pending)).resolves.toHaveLength(50);
    expect(await count(t)).toBe(50);
    // The pool is still usable: the batcher did not close it.
    const [[row]] = await own.query<RowDataPacket[]>("SELECT 1 AS one");
    expect(row?.one).toBe(1);
    await own.end();
  });
});

describe("MysqlLoadBatcher", () => {
  it("INT keys: one query per batch, missing keys null, duplicates fetched once", async () => {
    const t = await table("id INT PRIMARY KEY, name VARCHAR(20)");
    await pool.query(`INSERT INTO ${quote(t)} VALUES (1, 'one'), (2, 'two'), (42, 'answer')`);
    const counted = counting(pool);
    const loader = new MysqlLoadBatcher<number | string, { id: number; name: string }>({
      pool: counted.pool,
      table: t,
      key: "id",
    });
    const got = await Promise.all([1, 2, 3, 1, 42, "42", " 42", 1].map((k) => loader.process(k)));
    expect(got.map((r) => r?.name ?? null)).toEqual([
      "one",
      "two",
      null,
      "one",
      "answer",
      "answer", // the string "42" compares equal to 42, as WHERE id = '42' would
      "answer", // and so does " 42"
      "one",
    ]);
    expect(counted.statements).toHaveLength(1);
    // 1, 2, 3, 42, "42", " 42": duplicates of the same JS key sent once, and two NULL keys that
    // pad the statement to 8.
    expect((counted.statements[0]?.match(/\?/g) ?? []).length).toBe(8);
    await loader.stop();
  });

  it("pads batches to a few sizes kept prepared; the NULL keys find nothing, even rows whose key is NULL", async () => {
    const t = await table(
      "id INT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(8) NULL, UNIQUE KEY (code)",
    );
    await pool.query(`INSERT INTO ${quote(t)} (code) VALUES ('a'), ('b'), (NULL), (NULL), ('c')`);
    const single = mysql.createPool({ uri: URL, connectionLimit: 1 });
    try {
      const status = async () => {
        const [rows] = await single.query<RowDataPacket[]>(
          "SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_prepare', 'Com_stmt_close')",
        );
        return Object.fromEntries(rows.map((r) => [r.Variable_name, Number(r.Value)]));
      };
      const loader = new MysqlLoadBatcher<string, { id: number; code: string | null }>({
        pool: single,
        table: t,
        key: "code",
        maxBatchSize: 12,
      });
      await loader.process("a"); // the server-variables query, prepared and closed
      const before = await status();
      const load = (keys: string[]) =>
        Promise.all(keys.map((k) => loader.process(k))).then((rows) =>
          rows.map((r) => r?.id ?? null),
        );
      expect(await load(["a", "b", "zz"])).toEqual([1, 2, null]); // 4 keys sent
      expect(await load(["c", "a", "q"])).toEqual([5, 1, null]); // 4 again
      expect(await load(["a", "b", "c", "d", "e"])).toEqual([1, 2, 5, null, null]); // 8
      expect(await load("abcdefghi".split(""))).toEqual([1, 2, 5, ...Array(6).fill(null)]); // 12
      const after = await status();
      // The statements of 4, 8 and 12 keys, each prepared once and none closed.
      expect(after.Com_stmt_prepare - before.Com_stmt_prepare).toBe(3);
      expect(after.Com_stmt_close - before.Com_stmt_close).toBe(0);
      await loader.stop();
    } finally {
      await single.end();
    }
  });

  it("BIGINT keys beyond 2^53, as bigint or string", async () => {
    const t = await table("id BIGINT PRIMARY KEY, v VARCHAR(10)");
    await pool.query(
      `INSERT INTO ${quote(t)} VALUES (9007199254740992, 'a'), (9007199254740993, 'b'), (-9223372036854775808, 'min')`,
    );
    const exact = mysql.createPool({
      uri: URL,
      connectionLimit: 2,
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
    try {
      const loader = new MysqlLoadBatcher<bigint | string, { id: string; v: string }>({
        pool: exact,
        table: t,
        key: "id",
      });
      const got = await Promise.all(
        [9007199254740993n, "9007199254740992", -9223372036854775808n, 9007199254740994n].map((k) =>
          loader.process(k),
        ),
      );
      expect(got).toEqual([
        { id: "9007199254740993", v: "b" },
        { id: "9007199254740992", v: "a" },
        { id: "-9223372036854775808", v: "min" },
        null,
      ]);
    } finally {
      await exact.end();
    }
  });

  it("VARCHAR keys compare with the column's collation, in SQL", async () => {
    const t = await table(
      "name VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, cs VARCHAR(20) COLLATE utf8mb4_bin, v INT",
    );
    await pool.query(`INSERT INTO ${quote(t)} VALUES ('Abc', 'Abc', 1), ('ß', 'ß', 2)`);
    const ci = new MysqlLoadBatcher<string>({ pool, table: t, key: "name", columns: ["v"] });
    // Case-insensitive, trailing spaces ignored (PAD SPACE): each caller gets the row.
    expect(
      await Promise.all(["Abc", "abc", "ABC ", "abd", "ss"].map((k) => ci.process(k))),
    ).toEqual([
      { v: 1 },
      { v: 1 },
      { v: 1 },
      null,
      null, // utf8mb4_general_ci: ß is not ss
    ]);
    const cs = new MysqlLoadBatcher<string>({ pool, table: t, key: "cs", columns: ["v"] });
    expect(await Promise.all(["Abc", "abc"].map((k) => cs.process(k)))).toEqual([{ v: 1 }, null]);
  });

  it("a key that finds several rows rejects with a RangeError, alone", async () => {
    const t = await table("id INT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(10), KEY (tag)");
    await pool.query(`INSERT INTO ${quote(t)} (tag) VALUES ('a'), ('A'), ('b')`);
    const loader = new MysqlLoadBatcher({ pool, table: t, key: "tag" });
    const [a, b] = await Promise.allSettled([loader.process("a"), loader.process("b")]);
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(RangeError);
    expect((b as PromiseFulfilledResult<unknown>).value).toEqual({ id: 3, tag: "b" });
  });

  it("a missing table rejects every caller with the driver's error, without splitting", async () => {
    const counted = counting(pool);
    const loader = new MysqlLoadBatcher({
      pool: counted.pool,
      table: `ab_missing_${suffix()}`,
      key: "id",
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((k) => loader.process(k)));
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toMatchObject({
        code: "ER_NO_SUCH_TABLE",
        errno: 1146,
        sqlState: "42S02",
      });
    }
    expect(counted.statements).toHaveLength(1);
  });

  it("stop() drains", async () => {
    const t = await table("id INT PRIMARY KEY");
    await pool.query(`INSERT INTO ${quote(t)} VALUES (1), (2)`);
    const loader = new MysqlLoadBatcher({ pool, table: t, key: "id", maxQueueTime: 60_000 });
    const pending = [1, 2, 3].map((k) => loader.process(k));
    await loader.stop();
    expect(await Promise.all(pending)).toEqual([{ id: 1 }, { id: 2 }, null]);
  });
});
