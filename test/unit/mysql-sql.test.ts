/**
 * The SQL text `async-batcher/mysql` generates, how it quotes identifiers, and how it estimates
 * a statement's bytes: no server, no batcher.
 */

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { InvalidInputError } from "async-batcher/mysql";
import { describe, expect, it } from "vitest";
import {
  identifierListOption,
  identifierOption,
  isStatementLevel,
  quoteId,
  tableOption,
} from "../../src/integrations/mysql/common.js";
import { lengthPrefix, parameterSize, toParameter } from "../../src/integrations/mysql/encode.js";
import { keyIdentity } from "../../src/integrations/mysql/load.js";
import {
  insertShape,
  insertSql,
  loadShape,
  loadSql,
  rowOverhead,
  statementOverhead,
} from "../../src/integrations/mysql/sql.js";
import { driverError } from "../helpers/fake-mysql.js";

const require = createRequire(import.meta.url);
// mysql2's encoder of COM_STMT_EXECUTE (charset 45 is utf8mb4_general_ci).
const Execute: new (
  id: number,
  parameters: unknown[],
  charsetNumber: number,
  timezone: string,
  attributes?: unknown,
  clientFlags?: number,
) => { toPacket(): { length(): number } } = require(
  join(dirname(require.resolve("mysql2")), "lib/packets/execute.js"),
);

describe("quoteId", () => {
  it.each([
    ["plain", "`plain`"],
    ["with`tick", "`with``tick`"],
    ["``", "``````"],
    ["a'b\"c", "`a'b\"c`"],
    ["x; DROP TABLE t; --", "`x; DROP TABLE t; --`"],
    ["back\\slash", "`back\\slash`"],
    ["dotted.name", "`dotted.name`"],
    ["ünïcødé", "`ünïcødé`"],
  ])("quotes %j as %s", (name, quoted) => {
    expect(quoteId(name)).toBe(quoted);
  });
});

describe("identifiers from the configuration", () => {
  it("accepts any BMP character, quotes and backticks", () => {
    expect(identifierOption("table", "a`b'c\"d;--é中")).toBe("a`b'c\"d;--é中");
  });

  it.each([
    ["an empty string", "", TypeError, /^table must be a non-empty string/],
    ["a number", 1, TypeError, /^table must be a non-empty string/],
    ["NUL", "a\0b", TypeError, /^table must not contain a NUL/],
    ["an emoji", "t😀", TypeError, /^table must not contain characters beyond U\+FFFF/],
    ["65 characters", "x".repeat(65), RangeError, /^table must be at most 64 characters/],
    ["a trailing space", "t ", TypeError, /^table must not end with a space/],
  ])("refuses %s", (_, value, type, message) => {
    expect(() => identifierOption("table", value)).toThrow(type);
    expect(() => identifierOption("table", value)).toThrow(message);
  });

  it("counts characters, not UTF-16 units or bytes, toward 64", () => {
    expect(identifierOption("c", "é".repeat(64))).toHaveLength(64);
  });

  it("refuses a column named twice, in any case", () => {
    expect(() => identifierListOption("columns", ["a", "A"])).toThrow(/names "A" twice/);
  });

  it("never splits a dotted table name; { schema, name } qualifies it", () => {
    expect(tableOption("app.events")).toEqual({
      sql: "`app.events`",
      schema: undefined,
      name: "app.events",
    });
    expect(tableOption({ schema: "app", name: "ev`ents" })).toEqual({
      sql: "`app`.`ev``ents`",
      schema: "app",
      name: "ev`ents",
    });
  });
});

describe("INSERT text", () => {
  const spec = { table: "`t`", columns: ["a", "b`c"], ignore: false, update: undefined };

  it("is one multi-row INSERT with only placeholders for values", () => {
    expect(insertSql(insertShape(spec), 3)).toBe(
      "INSERT INTO `t` (`a`, `b``c`) VALUES (?,?),(?,?),(?,?)",
    );
  });

  it("INSERT IGNORE", () => {
    expect(insertSql(insertShape({ ...spec, ignore: true }), 1)).toBe(
      "INSERT IGNORE INTO `t` (`a`, `b``c`) VALUES (?,?)",
    );
  });

  it("ON DUPLICATE KEY UPDATE c = VALUES(c)", () => {
    expect(insertSql(insertShape({ ...spec, update: ["b`c"] }), 2)).toBe(
      "INSERT INTO `t` (`a`, `b``c`) VALUES (?,?),(?,?) ON DUPLICATE KEY UPDATE `b``c` = VALUES(`b``c`)",
    );
  });
});

describe("load text", () => {
  it("joins the numbered keys to the table on the key column", () => {
    const shape = loadShape({ table: "`users`", key: "id", columns: undefined });
    expect(loadSql(shape, 3)).toBe(
      "SELECT `k`.`o`, `t`.* FROM (SELECT ? AS `k`, 0 AS `o` UNION ALL SELECT ?, 1 UNION ALL SELECT ?, 2) AS `k` JOIN `users` AS `t` ON `t`.`id` = `k`.`k`",
    );
  });

  it("selects the listed columns, quoted", () => {
    const shape = loadShape({ table: "`s`.`u`", key: "e`mail", columns: ["a", "b'"] });
    expect(loadSql(shape, 1)).toBe(
      "SELECT `k`.`o`, `t`.`a`, `t`.`b'` FROM (SELECT ? AS `k`, 0 AS `o`) AS `k` JOIN `s`.`u` AS `t` ON `t`.`e``mail` = `k`.`k`",
    );
  });
});

describe("size estimation", () => {
  it("length prefixes of the protocol", () => {
    expect([0, 250, 251, 65_535, 65_536, 16_777_215, 16_777_216].map(lengthPrefix)).toEqual([
      1, 1, 3, 3, 4, 4, 9,
    ]);
  });

  it.each([
    ["NULL", null, 0],
    ["a number", 1.5, 8],
    ["a boolean", true, 1],
    ["a Date", new Date(0), 12],
    ["an ASCII string", "abc", 4],
    ["a 2-byte character", "é", 3],
    ["an emoji (4 bytes)", "😀", 5],
    ["a 300-byte string", "x".repeat(300), 303],
    ["a Buffer", Buffer.alloc(10), 11],
  ])("%s", (_, value, size) => {
    expect(parameterSize(value)).toBe(size);
  });

  it("bounds the prepare packet's placeholders and the execute packet's per-value bytes", () => {
    expect(rowOverhead(1)).toBe(4); // "(?)," in the prepare packet
    expect(rowOverhead(10)).toBe(32); // 3 × 10 + 2 bytes of NULL bitmap
    expect(statementOverhead("x".repeat(100), 65_535)).toBe(101);
    expect(statementOverhead("", 10)).toBe(21);
  });

  it.each([
    ["MariaDB", 0],
    ["MySQL 8 with query attributes", 1 << 27],
  ])("the packets mysql2 sends to %s are never larger than the estimate", (_, clientFlags) => {
    const columns = ["id", "name", "data", "at", "ok", "n"];
    const rows = [
      [null, "abc", Buffer.alloc(300), new Date(), true, 1.5],
      [7, "é😀".repeat(100), Buffer.alloc(0), null, false, -1],
      [null, "x".repeat(70_000), null, new Date(0), null, 2 ** 40],
    ];
    const shape = insertShape({ table: "`t`", columns, ignore: false, update: undefined });
    const values = rows.flat();
    let estimate = statementOverhead(shape.prefix + shape.suffix, values.length);
    for (const row of rows) {
      estimate += rowOverhead(columns.length);
      for (const value of row) estimate += parameterSize(toParameter(value, "v"));
    }
    // mysql2's own encoders: the execute packet, and the prepare packet (command byte + SQL).
    const execute = new Execute(1, values, 45, "local", undefined, clientFlags).toPacket();
    expect(execute.length() - 4).toBeLessThanOrEqual(estimate);
    expect(1 + Buffer.byteLength(insertSql(shape, rows.length))).toBeLessThanOrEqual(estimate);
  });
});

describe("toParameter", () => {
  it.each([
    ["undefined", undefined, null],
    ["a bigint", 9007199254740993n, "9007199254740993"],
    ["an array", [1, "a"], '[1,"a"]'],
    ["a plain object", { a: { b: 1 } }, '{"a":{"b":1}}'],
  ])("%s", (_, value, sent) => {
    expect(toParameter(value, "v")).toEqual(sent);
  });

  it("a class instance with its own toString (a Decimal) is sent as that string", () => {
    class Decimal {
      toString() {
        return "1.50";
      }
    }
    expect(toParameter(new Decimal(), "v")).toBe("1.50");
  });

  it("a Uint8Array becomes a Buffer over the same bytes", () => {
    const bytes = new Uint8Array([0, 1, 2, 3]).subarray(1, 3);
    const sent = toParameter(bytes, "v");
    expect(Buffer.isBuffer(sent)).toBe(true);
    expect([...(sent as Buffer)]).toEqual([1, 2]);
  });

  it.each([
    ["a function", () => 1, "type"],
    ["a symbol", Symbol("s"), "type"],
    ["a Map", new Map(), "type"],
    ["an invalid Date", new Date(Number.NaN), "value"],
  ])("refuses %s with InvalidInputError", (_, value, reason) => {
    expect(() => toParameter(value, "v")).toThrow(InvalidInputError);
    try {
      toParameter(value, "v");
    } catch (error) {
      expect((error as InvalidInputError).reason).toBe(reason);
    }
  });
});

describe("keyIdentity", () => {
  it("tells types apart and compares Buffers by bytes", () => {
    const ids = [42, 42n, "42", true, new Date(42), Buffer.from([42])].map(keyIdentity);
    expect(new Set(ids).size).toBe(6);
    expect(keyIdentity(Buffer.from([1, 2]))).toBe(keyIdentity(new Uint8Array([1, 2])));
  });

  it("never gives a string the identity of a Date or a Buffer, even one beginning with NUL", () => {
    const date = keyIdentity(new Date(42));
    const buffer = keyIdentity(Buffer.from([42]));
    expect(typeof date).toBe("string");
    for (const s of [date, buffer, "\0", "", "\0s"] as string[]) {
      expect(keyIdentity(s)).not.toBe(date);
      expect(keyIdentity(s)).not.toBe(buffer);
    }
    expect(keyIdentity("\0s")).not.toBe(keyIdentity("s"));
    expect(keyIdentity("abc")).toBe(keyIdentity("abc"));
  });
});

describe("isStatementLevel", () => {
  it.each([
    ["a connection error without errno", Object.assign(new Error("x"), { code: "ECONNREFUSED" })],
    ["a fatal error", driverError(1213, "ER_LOCK_DEADLOCK", "40001", true)],
    ["no such table", driverError(1146, "ER_NO_SUCH_TABLE", "42S02")],
    ["unknown column", driverError(1054, "ER_BAD_FIELD_ERROR", "42S22")],
    ["syntax", driverError(1064, "ER_PARSE_ERROR", "42000")],
    ["read-only", driverError(1290, "ER_OPTION_PREVENTS_STATEMENT", "HY000")],
    ["too many connections", driverError(1040, "ER_CON_COUNT_ERROR", "08004")],
  ])("%s: rejects the whole batch", (_, error) => {
    expect(isStatementLevel(error)).toBe(true);
  });

  it.each([
    ["a duplicate key", driverError(1062, "ER_DUP_ENTRY", "23000")],
    ["MariaDB's check constraint", driverError(4025, "ER_CONSTRAINT_FAILED", "23000")],
    ["MySQL's check constraint", driverError(3819, "ER_CHECK_CONSTRAINT_VIOLATED", "HY000")],
    ["a value too long", driverError(1406, "ER_DATA_TOO_LONG", "22001")],
    ["a bad value", driverError(1366, "ER_TRUNCATED_WRONG_VALUE_FOR_FIELD", "22007")],
    ["a deadlock", driverError(1213, "ER_LOCK_DEADLOCK", "40001")],
    ["a packet too large", driverError(1153, "ER_NET_PACKET_TOO_LARGE", "08S01", true)],
  ])("%s: split", (_, error) => {
    expect(isStatementLevel(error)).toBe(false);
  });
});
