/**
 * Errors across the thread boundary, without threads: what `serializeThrown` makes in the worker
 * goes through `structuredClone` (what `postMessage` does) and `deserializeThrown` rebuilds it.
 * The worker tests check the same through real threads; these cover the cases one by one.
 */
import { describe, expect, it } from "vitest";
import { transferListOf, withTransfer } from "../../src/worker/protocol.js";
import {
  deserializeThrown,
  type SerializedThrown,
  serializeThrown,
} from "../../src/worker/serialize.js";

/** Sends `thrown` across a (simulated) thread boundary. */
const roundTrip = (thrown: unknown): unknown =>
  deserializeThrown(structuredClone(serializeThrown(thrown)) as SerializedThrown);

describe("errors keep what callers test", () => {
  it.each([Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError])(
    "a %o stays one, with name, message, code, stack and own properties",
    (Kind) => {
      const error = Object.assign(new Kind("it broke"), { code: "E_BROKE", status: 503 });
      const rebuilt = roundTrip(error) as typeof error;
      expect(rebuilt).toBeInstanceOf(Kind);
      expect(rebuilt).not.toBe(error);
      expect(rebuilt.name).toBe(error.name);
      expect(rebuilt.message).toBe("it broke");
      expect(rebuilt.code).toBe("E_BROKE");
      expect(rebuilt.status).toBe(503);
      expect(rebuilt.stack).toBe(error.stack);
    },
  );

  it("a user-defined class becomes an error of the nearest built-in class, with its name", () => {
    class NotFound extends TypeError {
      override name = "NotFound";
      readonly code = "E_NOT_FOUND";
    }
    const rebuilt = roundTrip(new NotFound("gone")) as NotFound;
    expect(rebuilt).toBeInstanceOf(TypeError);
    expect(rebuilt).not.toBeInstanceOf(NotFound);
    expect(rebuilt).toMatchObject({ name: "NotFound", message: "gone", code: "E_NOT_FOUND" });
    expect(String(rebuilt)).toBe("NotFound: gone");
  });

  it("a name or code from the prototype travels too", () => {
    class Timeout extends Error {
      get code() {
        return "E_TIMEOUT";
      }
    }
    Timeout.prototype.name = "Timeout";
    expect(roundTrip(new Timeout("late"))).toMatchObject({ name: "Timeout", code: "E_TIMEOUT" });
  });

  it("the cause chain, errors or not", () => {
    const root = Object.assign(new Error("root"), { code: "E_ROOT" });
    const middle = new RangeError("middle", { cause: root });
    const top = new Error("top", { cause: middle });
    const rebuilt = roundTrip(top) as Error;
    const rebuiltMiddle = rebuilt.cause as Error;
    expect(rebuiltMiddle).toBeInstanceOf(RangeError);
    expect(rebuiltMiddle.message).toBe("middle");
    expect(rebuiltMiddle.cause).toMatchObject({ message: "root", code: "E_ROOT" });
    expect((roundTrip(new Error("x", { cause: { retry: true } })) as Error).cause).toEqual({
      retry: true,
    });
    // An explicit undefined cause is still there; no cause stays absent.
    expect("cause" in (roundTrip(new Error("x", { cause: undefined })) as Error)).toBe(true);
    expect("cause" in (roundTrip(new Error("x")) as Error)).toBe(false);
  });

  it("a cycle of causes does not loop", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    Object.defineProperty(a, "cause", { value: b, enumerable: false });
    let depth = 0;
    for (let at: unknown = roundTrip(a); at instanceof Error; at = at.cause) depth++;
    expect(depth).toBeGreaterThan(2);
    expect(depth).toBeLessThan(20);
  });

  it("an AggregateError with its members", () => {
    const error = new AggregateError(
      [new TypeError("one"), Object.assign(new Error("two"), { code: "E_TWO" }), "three"],
      "several",
    );
    const rebuilt = roundTrip(error) as AggregateError;
    expect(rebuilt).toBeInstanceOf(AggregateError);
    expect(rebuilt.message).toBe("several");
    expect(rebuilt.errors[0]).toBeInstanceOf(TypeError);
    expect(rebuilt.errors[1]).toMatchObject({ message: "two", code: "E_TWO" });
    expect(rebuilt.errors[2]).toBe("three");
  });

  it("a DOMException, with its name and legacy code", () => {
    const error = new DOMException("stopped", "AbortError");
    const rebuilt = roundTrip(error) as DOMException;
    expect(rebuilt).toBeInstanceOf(DOMException);
    expect(rebuilt.name).toBe("AbortError");
    expect(rebuilt.code).toBe(error.code);
    expect(rebuilt.stack).toBe(error.stack);
  });

  it("drops own properties that cannot be cloned, keeps the rest", () => {
    const error = Object.assign(new Error("x"), {
      callback: () => {},
      handle: Symbol("h"),
      details: { rows: [1, 2] },
    });
    const rebuilt = roundTrip(error) as Record<string, unknown>;
    expect(rebuilt.details).toEqual({ rows: [1, 2] });
    expect("callback" in rebuilt).toBe(false);
    expect("handle" in rebuilt).toBe(false);
  });

  it("an error without a stack does not get the main thread's", () => {
    const error = new Error("no stack");
    delete error.stack;
    expect((roundTrip(error) as Error).stack).toBeUndefined();
  });
});

describe("values thrown that are not errors", () => {
  it.each([["a string"], [42], [null], [undefined], [{ reason: "plain object" }], [[1, 2]]])(
    "come back as they were: %o",
    (value) => {
      expect(roundTrip(value)).toEqual(value);
    },
  );

  it("an object with an `error` key is still a value", () => {
    expect(roundTrip({ error: "not a serialized error" })).toEqual({
      error: "not a serialized error",
    });
  });

  it("what cannot be cloned becomes an Error that says so", () => {
    const rebuilt = roundTrip(() => "a function");
    expect(rebuilt).toBeInstanceOf(Error);
    expect((rebuilt as Error).message).toContain("cannot be cloned");
  });
});

describe("transfer lists", () => {
  it("drop SharedArrayBuffers and duplicates", () => {
    const buffer = new ArrayBuffer(16);
    const shared = new SharedArrayBuffer(8);
    const views = [new Float64Array(buffer, 0, 1), new Float64Array(buffer, 8, 1)];
    expect(transferListOf([...views.map((view) => view.buffer), shared])).toEqual([buffer]);
  });

  it("withTransfer checks its arguments", () => {
    expect(() => withTransfer("results" as never, [])).toThrow(TypeError);
    expect(() => withTransfer([], "buffers" as never)).toThrow(TypeError);
  });
});
