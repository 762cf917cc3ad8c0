/**
 * A fake `pg` pool for the unit tests of `async-batcher/pg`: it answers the catalog query with a
 * table described here, records every statement, and hands the others to a handler.
 */
import { TABLE_INFO_SQL } from "../../src/integrations/pg/catalog.js";
import type { PgQueryConfig, PgQueryResult } from "../../src/integrations/pg/common.js";

export interface FakeColumn {
  name: string;
  type: string;
  is_array?: boolean;
  is_json?: boolean;
  identity?: string;
  generated?: string;
  default_expr?: string | null;
  sequence?: string | null;
  /** Position in the primary key, from 0. */
  pk_position?: number | null;
}

export interface Query {
  text: string;
  values: unknown[];
  /** The prepared statement's name, when the batcher prepares it. */
  name?: string;
}

export type Handler = (text: string, values: unknown[]) => PgQueryResult | Promise<PgQueryResult>;

export class FakePool {
  readonly queries: Query[] = [];
  /** Statements other than the catalog query. */
  readonly statements: Query[] = [];
  catalogReads = 0;
  ended = false;
  columns: FakeColumn[];
  handler: Handler;
  /** When set, the catalog query rejects with it. */
  catalogError: unknown;
  readonly options: { max?: number } = {};

  constructor(columns: FakeColumn[], handler: Handler = () => ({ rows: [] })) {
    this.columns = columns;
    this.handler = handler;
  }

  async query(config: PgQueryConfig): Promise<PgQueryResult> {
    const { text, values } = config;
    const query: Query =
      config.name === undefined ? { text, values } : { text, values, name: config.name };
    this.queries.push(query);
    if (text === TABLE_INFO_SQL) {
      this.catalogReads++;
      await Promise.resolve();
      if (this.catalogError !== undefined) throw this.catalogError;
      return {
        rows: this.columns.map((c) => ({
          name: c.name,
          type: c.type,
          is_array: c.is_array ?? false,
          is_json: c.is_json ?? false,
          identity: c.identity ?? "",
          generated: c.generated ?? "",
          default_expr: c.default_expr ?? null,
          sequence: c.sequence ?? null,
          pk_position: c.pk_position ?? null,
        })),
      };
    }
    this.statements.push(query);
    return this.handler(text, values);
  }

  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
}

/** An error as pg gives it: a message and a SQLSTATE `code`. */
export function pgError(code: string, message = `error ${code}`): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** Every settled outcome of `promises`: the value, or the rejection's `code` or `reason` or name. */
export async function outcomes(promises: Promise<unknown>[]): Promise<unknown[]> {
  const settled = await Promise.allSettled(promises);
  return settled.map((s) => (s.status === "fulfilled" ? s.value : s.reason));
}
