/** The data of the database bench: the rows inserted and loaded, and the checks of what comes back. */
import { isDeepStrictEqual } from "node:util";

/** An inserted row, as a caller passes it to the batcher (the columns of the insert). */
export interface EventRow {
  user_id: number;
  kind: string;
  /** JSON text: both drivers pass a string parameter to a json/jsonb column as it is. */
  payload: string;
}
export const EVENT_COLUMNS = ["user_id", "kind", "payload"];
const KINDS = ["signup", "login", "purchase", "logout"] as const;

export function eventPayload(seq: number) {
  return { seq, source: "bench", amount: (seq * 37) % 1000, tags: ["web", `t${seq % 10}`] };
}

export function eventRow(seq: number): EventRow {
  return {
    user_id: 1 + ((seq * 7919) % 5000),
    kind: KINDS[seq % KINDS.length] as string,
    payload: JSON.stringify(eventPayload(seq)),
  };
}

/** A row of the table the loads read, keyed by `id`. */
export interface ProfileRow {
  id: number;
  name: string;
  score: number;
  payload: string;
}

export function profileRow(id: number): ProfileRow {
  return {
    id,
    name: `user-${id}`,
    score: (id * 37) % 1000,
    payload: JSON.stringify({ id, plan: id % 3 === 0 ? "pro" : "free", flags: [id % 2 === 0] }),
  };
}

/** A check that failed: the run fails with it. */
export class VerificationError extends Error {
  override name = "VerificationError";
}

/** A row of the insert table as read back. */
export type StoredEvent = { id: unknown; user_id: unknown; kind: unknown; payload: unknown };

/**
 * Every `eventRow(seq)` for seq in `[0, n)` is in `stored`, exactly once, field by field; and
 * where `ids` has the id a caller was told (not NaN), the row of that caller has that id.
 */
export function checkEvents(stored: readonly StoredEvent[], n: number, ids?: Float64Array): void {
  if (stored.length !== n) throw new VerificationError(`read back ${stored.length} rows, not ${n}`);
  const seen = new Uint8Array(n);
  for (const row of stored) {
    // jsonb comes back parsed (pg); MariaDB's JSON is LONGTEXT and comes back as text.
    const payload = typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload;
    const seq = (payload as { seq?: unknown } | null)?.seq;
    if (typeof seq !== "number" || !Number.isInteger(seq) || seq < 0 || seq >= n) {
      throw new VerificationError(`a row with an unexpected payload: ${JSON.stringify(row)}`);
    }
    if (seen[seq] === 1) throw new VerificationError(`row ${seq} was inserted twice`);
    seen[seq] = 1;
    const want = eventRow(seq);
    if (
      row.user_id !== want.user_id ||
      row.kind !== want.kind ||
      !isDeepStrictEqual(payload, eventPayload(seq))
    ) {
      throw new VerificationError(
        `row ${seq} is ${JSON.stringify(row)}, expected ${JSON.stringify(want)}`,
      );
    }
    const told = ids?.[seq] ?? Number.NaN;
    if (!Number.isNaN(told) && Number(row.id) !== told) {
      throw new VerificationError(`the caller of row ${seq} was told id ${told}, it has ${row.id}`);
    }
  }
}

/** The row a load of `key` resolved with is the profile of `key`. */
export function checkProfile(row: unknown, key: number): void {
  const r = row as Partial<Record<keyof ProfileRow, unknown>> | undefined | null;
  // As profileRow(key) has them (its payload is not compared, so not built).
  if (r?.id !== key || r.name !== `user-${key}` || r.score !== (key * 37) % 1000) {
    throw new VerificationError(`the load of key ${key} returned ${JSON.stringify(row)}`);
  }
}

/** A deterministic PRNG (mulberry32), for the keys loaded. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
