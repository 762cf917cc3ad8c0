/**
 * The two databases of the bench behind one shape: the pool, the tables, the hand-written
 * statements (one per call, and the bulk INSERT), and the batchers under test.
 */
import type { BatcherStats } from "async-batcher";
import { MysqlInsertBatcher, type MysqlInsertResult, MysqlLoadBatcher } from "async-batcher/mysql";
import { PgInsertBatcher, PgLoadBatcher } from "async-batcher/pg";
import mysql, { type ResultSetHeader, type RowDataPacket } from "mysql2/promise";
import pg from "pg";
// Not public: read only to record the defaults the batchers ran with.
import { MYSQL_DEFAULTS } from "../../src/integrations/mysql/common.js";
import { PG_DEFAULTS } from "../../src/integrations/pg/common.js";
import {
  EVENT_COLUMNS,
  type EventRow,
  type ProfileRow,
  type StoredEvent,
  VerificationError,
} from "./data.js";

/** Options given to a batcher on top of its defaults (the bench's tuned variant). */
export type BatcherExtra = Readonly<Record<string, number>>;

/** Extra options as written in a constructor call: `, maxBatchSize: 1000`. */
export function optionsText(extra: BatcherExtra): string {
  return Object.entries(extra)
    .map(([k, v]) => `, ${k}: ${v}`)
    .join("");
}

/** What the bench needs of a batcher: the class under test, structurally. */
export interface Batcher<T> {
  process(item: T): Promise<unknown>;
  stats(): BatcherStats;
  stop(options?: { force?: boolean }): Promise<void>;
}

export interface Backend {
  readonly id: "pg" | "mysql";
  readonly name: string;
  readonly url: string;
  readonly insertBatcherName: string;
  readonly loadBatcherName: string;
  /** The core options both batchers default to, as their module defines them. */
  readonly batcherDefaults: Readonly<Record<string, unknown>>;
  /** The batchers' constructor calls as a user writes them (the options used). */
  insertBatcherConfig(table: string, extra: BatcherExtra): string;
  loadBatcherConfig(table: string, extra: BatcherExtra): string;
  server(): Promise<{ version: string; settings: Record<string, string> }>;
  /** Opens every connection of the pool, so no run pays for connecting. */
  warm(): Promise<void>;
  eventsDdl(table: string): string;
  profilesDdl(table: string): string;
  exec(sql: string): Promise<void>;
  fillProfiles(table: string, rows: readonly ProfileRow[]): Promise<void>;
  /** One INSERT of one row, checked to insert one row. */
  insertOne(table: string): { sql: string; insert(row: EventRow): Promise<void> };
  /** The ceiling: one statement inserting every row, written as an expert would. */
  bulkInsert(table: string): { sql: string; insert(rows: readonly EventRow[]): Promise<void> };
  /** Bytes of the ceiling's statement as sent, when the driver builds it (mysql2). */
  bulkBytes?(table: string, rows: readonly EventRow[]): number;
  selectOne(table: string): { sql: string; load(key: number): Promise<unknown> };
  insertBatcher(table: string, extra: BatcherExtra): Batcher<EventRow>;
  /** What is wrong with what the insert batcher resolved a caller with, or `undefined`. */
  checkInsertResult(result: unknown): { wrong?: string; id?: number };
  loadBatcher(table: string, extra: BatcherExtra): Batcher<number>;
  count(table: string): Promise<number>;
  events(table: string): Promise<StoredEvent[]>;
  drop(table: string): Promise<void>;
  close(): Promise<void>;
}

export function postgres(url: string, poolSize: number): Backend {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on("error", (error) => console.error(`pg pool: idle client error: ${error.message}`));
  const id = (name: string) => `"${name.replaceAll('"', '""')}"`;
  return {
    id: "pg",
    name: "PostgreSQL",
    url,
    insertBatcherName: "PgInsertBatcher",
    loadBatcherName: "PgLoadBatcher",
    batcherDefaults: PG_DEFAULTS,
    async server() {
      const { rows } = await pool.query(
        "SELECT version() AS version, current_setting('synchronous_commit') AS synchronous_commit, current_setting('fsync') AS fsync, current_setting('shared_buffers') AS shared_buffers, current_setting('max_connections') AS max_connections",
      );
      const { version, ...rest } = rows[0] as Record<string, string>;
      return { version: String(version), settings: rest };
    },
    async warm() {
      const clients = await Promise.all(Array.from({ length: poolSize }, () => pool.connect()));
      for (const client of clients) client.release();
    },
    eventsDdl: (table) =>
      `CREATE TABLE ${id(table)} (id bigserial PRIMARY KEY, user_id int NOT NULL, kind text NOT NULL, payload jsonb, created_at timestamptz NOT NULL DEFAULT now())`,
    profilesDdl: (table) =>
      `CREATE TABLE ${id(table)} (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL, payload jsonb NOT NULL)`,
    async exec(sql) {
      await pool.query(sql);
    },
    async fillProfiles(table, rows) {
      await pool.query(
        `INSERT INTO ${id(table)} (id, name, score, payload) SELECT * FROM unnest($1::int[], $2::text[], $3::int[], $4::jsonb[])`,
        [
          rows.map((r) => r.id),
          rows.map((r) => r.name),
          rows.map((r) => r.score),
          rows.map((r) => r.payload),
        ],
      );
      await pool.query(`ANALYZE ${id(table)}`);
    },
    insertOne(table) {
      const sql = `INSERT INTO ${id(table)} (user_id, kind, payload) VALUES ($1, $2, $3)`;
      return {
        sql,
        async insert(row) {
          const result = await pool.query(sql, [row.user_id, row.kind, row.payload]);
          if (result.rowCount !== 1) {
            throw new VerificationError(`an INSERT reported ${result.rowCount} rows`);
          }
        },
      };
    },
    bulkInsert(table) {
      // Three array parameters, whatever the row count: no 65,535-parameter limit, one parse.
      const sql = `INSERT INTO ${id(table)} (user_id, kind, payload) SELECT * FROM unnest($1::int[], $2::text[], $3::jsonb[])`;
      return {
        sql,
        async insert(rows) {
          const userIds = new Array<number>(rows.length);
          const kinds = new Array<string>(rows.length);
          const payloads = new Array<string>(rows.length);
          for (let i = 0; i < rows.length; i++) {
            const row = rows[i] as EventRow;
            userIds[i] = row.user_id;
            kinds[i] = row.kind;
            payloads[i] = row.payload;
          }
          const result = await pool.query(sql, [userIds, kinds, payloads]);
          if (result.rowCount !== rows.length) {
            throw new VerificationError(`the bulk INSERT reported ${result.rowCount} rows`);
          }
        },
      };
    },
    selectOne(table) {
      const sql = `SELECT * FROM ${id(table)} WHERE id = $1`;
      return { sql, load: async (key) => (await pool.query(sql, [key])).rows[0] };
    },
    insertBatcherConfig: (table, extra) =>
      `new PgInsertBatcher({ pool, table: ${JSON.stringify(table)}, columns: ${JSON.stringify(EVENT_COLUMNS)}${optionsText(extra)} })`,
    // Without `returning`, a caller resolves with nothing.
    checkInsertResult: (result) =>
      result === undefined ? {} : { wrong: `${JSON.stringify(result)}, not undefined` },
    insertBatcher: (table, extra) =>
      new PgInsertBatcher({ pool, table, columns: EVENT_COLUMNS, ...extra }),
    loadBatcherConfig: (table, extra) =>
      `new PgLoadBatcher({ pool, table: ${JSON.stringify(table)}, key: "id"${optionsText(extra)} })`,
    loadBatcher: (table, extra) => new PgLoadBatcher({ pool, table, key: "id", ...extra }),
    async count(table) {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${id(table)}`);
      return Number((rows[0] as { n: unknown }).n);
    },
    async events(table) {
      return (await pool.query(`SELECT id, user_id, kind, payload FROM ${id(table)}`)).rows;
    },
    async drop(table) {
      await pool.query(`DROP TABLE IF EXISTS ${id(table)}`);
    },
    close: () => pool.end(),
  };
}

export function mariadb(url: string, poolSize: number): Backend {
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: poolSize,
    waitForConnections: true,
    queueLimit: 0,
  });
  const id = (name: string) => `\`${name.replaceAll("`", "``")}\``;
  const bulkSql = (table: string) => `INSERT INTO ${id(table)} (user_id, kind, payload) VALUES ?`;
  const bulkValues = (rows: readonly EventRow[]) => [
    rows.map((row) => [row.user_id, row.kind, row.payload]),
  ];
  return {
    id: "mysql",
    name: "MariaDB",
    url,
    insertBatcherName: "MysqlInsertBatcher",
    loadBatcherName: "MysqlLoadBatcher",
    batcherDefaults: MYSQL_DEFAULTS,
    async server() {
      const [rows] = await pool.query<RowDataPacket[]>(
        "SELECT VERSION() AS version, @@innodb_flush_log_at_trx_commit AS innodb_flush_log_at_trx_commit, @@max_allowed_packet AS max_allowed_packet, @@innodb_buffer_pool_size AS innodb_buffer_pool_size, @@max_connections AS max_connections",
      );
      const { version, ...rest } = rows[0] as Record<string, unknown>;
      return {
        version: String(version),
        settings: Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, String(v)])),
      };
    },
    async warm() {
      const connections = await Promise.all(
        Array.from({ length: poolSize }, () => pool.getConnection()),
      );
      for (const connection of connections) connection.release();
    },
    eventsDdl: (table) =>
      `CREATE TABLE ${id(table)} (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, kind VARCHAR(32) NOT NULL, payload JSON, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB`,
    profilesDdl: (table) =>
      `CREATE TABLE ${id(table)} (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, score INT NOT NULL, payload JSON NOT NULL) ENGINE=InnoDB`,
    async exec(sql) {
      await pool.query(sql);
    },
    async fillProfiles(table, rows) {
      await pool.query(`INSERT INTO ${id(table)} (id, name, score, payload) VALUES ?`, [
        rows.map((r) => [r.id, r.name, r.score, r.payload]),
      ]);
      await pool.query(`ANALYZE TABLE ${id(table)}`);
    },
    insertOne(table) {
      const sql = `INSERT INTO ${id(table)} (user_id, kind, payload) VALUES (?, ?, ?)`;
      return {
        sql,
        async insert(row) {
          const [result] = await pool.query<ResultSetHeader>(sql, [
            row.user_id,
            row.kind,
            row.payload,
          ]);
          if (result.affectedRows !== 1) {
            throw new VerificationError(`an INSERT reported ${result.affectedRows} rows`);
          }
        },
      };
    },
    bulkInsert(table) {
      // mysql2 expands `VALUES ?` with an array of rows into `(…), (…), …` client-side: one
      // statement, under max_allowed_packet (its size is recorded).
      const sql = bulkSql(table);
      return {
        sql,
        async insert(rows) {
          const [result] = await pool.query<ResultSetHeader>(sql, bulkValues(rows));
          if (result.affectedRows !== rows.length) {
            throw new VerificationError(`the bulk INSERT reported ${result.affectedRows} rows`);
          }
        },
      };
    },
    bulkBytes: (table, rows) =>
      Buffer.byteLength(pool.format(bulkSql(table), bulkValues(rows)), "utf8"),
    selectOne(table) {
      const sql = `SELECT * FROM ${id(table)} WHERE id = ?`;
      return {
        sql,
        async load(key) {
          const [rows] = await pool.query<RowDataPacket[]>(sql, [key]);
          return rows[0];
        },
      };
    },
    insertBatcherConfig: (table, extra) =>
      `new MysqlInsertBatcher({ pool, table: ${JSON.stringify(table)}, columns: ${JSON.stringify(EVENT_COLUMNS)}${optionsText(extra)} })`,
    // A plain INSERT into InnoDB under MariaDB's default innodb_autoinc_lock_mode (1): each
    // caller is told its row's AUTO_INCREMENT id, checked against the table afterwards.
    checkInsertResult(result) {
      const r = result as Partial<MysqlInsertResult> | undefined;
      if (r?.affectedRows !== 1 || !Number.isSafeInteger(r.insertId) || (r.insertId ?? 0) <= 0) {
        return { wrong: `${JSON.stringify(result)} (expected affectedRows 1 and its insertId)` };
      }
      return { id: r.insertId as number };
    },
    insertBatcher: (table, extra) =>
      new MysqlInsertBatcher({ pool, table, columns: EVENT_COLUMNS, ...extra }),
    loadBatcherConfig: (table, extra) =>
      `new MysqlLoadBatcher({ pool, table: ${JSON.stringify(table)}, key: "id"${optionsText(extra)} })`,
    loadBatcher: (table, extra) => new MysqlLoadBatcher({ pool, table, key: "id", ...extra }),
    async count(table) {
      const [rows] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${id(table)}`);
      return Number((rows[0] as { n: unknown }).n);
    },
    async events(table) {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT id, user_id, kind, payload FROM ${id(table)}`,
      );
      return rows as StoredEvent[];
    },
    async drop(table) {
      await pool.query(`DROP TABLE IF EXISTS ${id(table)}`);
    },
    close: () => pool.end(),
  };
}
