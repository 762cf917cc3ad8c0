/**
 * Bulk inserts and lookups with async-batcher/pg: 5,000 independent callers each insert one row
 * and get its id back; one row is bad and fails alone; then each id is loaded back by key.
 * Creates and drops its own table. Run: npx tsx examples/pg-bulk-insert/index.ts
 * (PG_URL, default postgres://postgres@127.0.0.1:5432/test).
 */
import { PgInsertBatcher, PgLoadBatcher } from "async-batcher/pg";
import pg from "pg";

const url = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const pool = new pg.Pool({ connectionString: url, max: 4 });
const table = `pg_bulk_insert_example_${process.pid}`;
await pool.query(
  `CREATE TABLE "${table}" (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, score int CHECK (score >= 0), created timestamptz NOT NULL DEFAULT now())`,
);

interface Signup {
  email: string;
  score: number;
}
interface Inserted {
  id: string; // int8 comes back as a string from pg
  created: Date;
}

// Each batch of up to 1,000 rows is ONE statement; every caller gets its own id and default.
const signups = new PgInsertBatcher<Signup, Inserted>({
  pool,
  table,
  columns: ["email", "score"],
  returning: ["id", "created"],
});
let statements = 0;
let halves = 0;
signups.on("batchStart", (batch) => {
  statements++;
  if (batch.reason === "split") halves++;
});

const started = performance.now();
const results = await Promise.allSettled(
  Array.from({ length: 5_000 }, (_, i) =>
    signups.process({ email: `user${i}@example.com`, score: i === 1234 ? -1 : i % 100 }),
  ),
);
const ms = performance.now() - started;
const inserted = results.flatMap((r) => (r.status === "fulfilled" && r.value ? [r.value] : []));
const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ i, error: r.reason }] : []));
console.log(
  `${inserted.length} rows inserted in ${ms.toFixed(0)} ms with ${statements} statements ` +
    `(${halves} of them halves of the batch that held the bad row)`,
);
for (const { i, error } of failed)
  console.log(`caller ${i} rejected alone: ${error.code} ${error.message}`);

// Loads: one SELECT per batch; the same key asked twice in a batch is fetched once.
const byId = new PgLoadBatcher<string, { id: string; email: string }>({ pool, table, key: "id" });
const sample = [inserted[0], inserted[4000], inserted[0]].map((row) => row?.id as string);
const rows = await Promise.all([...sample, "0"].map((id) => byId.process(id)));
console.log(
  "loaded:",
  rows.map((row) => row?.email ?? null),
);

await Promise.all([signups.stop(), byId.stop()]); // the pool is ours: the batchers leave it open
const { rows: counted } = await pool.query(`SELECT count(*)::int AS n FROM "${table}"`);
console.log(`the table holds ${counted[0]?.n} rows`);
await pool.query(`DROP TABLE "${table}"`);
await pool.end();
