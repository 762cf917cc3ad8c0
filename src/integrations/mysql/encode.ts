import { Buffer } from "node:buffer";
import { InvalidInputError } from "../../errors.js";
import { describe } from "../../options.js";
import type { MysqlValue } from "./common.js";

/**
 * Sizes below are of the binary protocol (`COM_STMT_PREPARE` and `COM_STMT_EXECUTE`), which is
 * what the batchers send: the SQL text holds only `?` placeholders, and each value travels as
 * its own field of the execute packet, unescaped. An upper estimate of a value's bytes there:
 *
 * - `NULL`: none (one bit of the NULL bitmap, counted per row);
 * - a number: 8 (a DOUBLE); a boolean: 1 (a TINY); a `Date`: 12 (a DATETIME, 1 length byte and
 *   up to 11);
 * - a string: its UTF-8 bytes plus a length prefix of 1, 3, 4 or 9 bytes. The connection's
 *   character set may be narrower than UTF-8 (latin1: 1 byte per character) but never wider for
 *   the characters it can hold, so UTF-8 is an upper bound;
 * - a Buffer: its bytes plus the length prefix;
 *
 * plus, per value, 3 bytes: its type and flag bytes, and the empty name MySQL 8.0.23+ expects
 * per value when query attributes are on (MariaDB has none: then it is 1 byte of slack).
 */
export const PARAM_OVERHEAD = 3;

/** Bytes of a length-encoded integer `n` in the MySQL protocol. */
export function lengthPrefix(n: number): number {
  if (n < 251) return 1;
  if (n < 65_536) return 3;
  if (n < 16_777_216) return 4;
  return 9;
}

/** Upper estimate of a parameter's bytes in the execute packet (see above); `value` as sent. */
export function parameterSize(value: unknown): number {
  if (value === null) return 0;
  switch (typeof value) {
    case "number":
      return 8;
    case "boolean":
      return 1;
    case "string": {
      const bytes = Buffer.byteLength(value, "utf8");
      return lengthPrefix(bytes) + bytes;
    }
    default:
      if (value instanceof Date) return 12;
      if (Buffer.isBuffer(value)) return lengthPrefix(value.length) + value.length;
      // Not reached: parameters are normalized by toParameter first.
      return Number.POSITIVE_INFINITY;
  }
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A JS value as the batchers send it, or why it cannot be sent. mysql2 would send most of these
 * itself; converting them here fixes what the value is when `process()` is called (a later
 * change to the caller's object does not reach the database) and what it weighs:
 *
 * - `undefined` → `NULL`; `null`, strings, numbers, booleans, valid `Date`s and Buffers as they
 *   are;
 * - a bigint → its decimal string (exact, for BIGINT columns beyond 2^53);
 * - another `Uint8Array` or `ArrayBuffer` view → a Buffer over the same bytes (not copied: do
 *   not change it before its batch has run);
 * - an array or plain object → its `JSON.stringify` text (for JSON columns);
 * - an object with its own `toString()` (a Decimal, say) → that string.
 *
 * Refused (`InvalidInputError`): functions, symbols, invalid `Date`s, and other objects.
 */
export function toParameter(value: unknown, what: string): MysqlValue {
  switch (typeof value) {
    case "undefined":
      return null;
    case "string":
    case "number":
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "object": {
      if (value === null || Buffer.isBuffer(value)) return value as MysqlValue;
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) {
          throw new InvalidInputError("value", `${what} is an invalid Date`);
        }
        return value;
      }
      if (ArrayBuffer.isView(value)) {
        return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      }
      if (value instanceof ArrayBuffer) return Buffer.from(value);
      if (Array.isArray(value) || isPlainObject(value)) return JSON.stringify(value);
      if (typeof value.toString === "function" && value.toString !== Object.prototype.toString) {
        return String(value);
      }
      break;
    }
  }
  throw new InvalidInputError(
    "type",
    `${what} must be a string, number, bigint, boolean, Date, Buffer, array, plain object, null or undefined, got ${describe(value)}`,
  );
}
