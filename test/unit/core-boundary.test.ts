/**
 * The core (`async-batcher`) runs on any runtime: nothing under src/ outside src/worker/ and
 * src/integrations/ (Node.js subpaths with their own drivers) imports from `node:*` or piscina, and the core's entry does not reach src/worker/. The built
 * files are checked the same way by `npm run check:package`. `async-batcher/otel` (src/otel/)
 * runs wherever `@opentelemetry/api` runs, so it is held to the same rule; and only it may import
 * `@opentelemetry/*`: the core depends on nothing.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const src = fileURLToPath(new URL("../../src/", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Every module specifier a file imports or re-exports (type-only ones included). */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+"([^"]+)"/g)].map(
    (match) => match[1] as string,
  );
}

const core = sources(src).filter((file) => {
  const path = relative(src, file);
  return !path.startsWith("worker") && !path.startsWith("integrations");
});

describe("the core stays portable", () => {
  it("has source files to check", () => {
    expect(core.length).toBeGreaterThan(5);
    expect(core.map((file) => relative(src, file))).toContain("index.ts");
    // The pattern finds multi-line and type-only imports alike.
    expect(specifiers(join(src, "index.ts"))).toEqual(
      expect.arrayContaining(["./batcher.js", "./errors.js", "./types.js"]),
    );
    expect(specifiers(join(src, "worker", "executor.ts"))).toEqual(
      expect.arrayContaining(["node:url", "piscina", "../errors.js"]),
    );
  });

  it.each(core.map((file) => [relative(src, file), file]))(
    "%s imports nothing from node:*, piscina or src/worker",
    (_name, file) => {
      for (const specifier of specifiers(file as string)) {
        expect(specifier).not.toMatch(/^node:|^piscina$|(^|\/)worker(\/|$)/);
      }
    },
  );

  it("has the otel subpath among the files checked", () => {
    expect(core.map((file) => relative(src, file))).toContain(join("otel", "index.ts"));
  });

  it.each(
    sources(src)
      .filter((file) => !relative(src, file).startsWith("otel"))
      .map((file) => [relative(src, file), file]),
  )("%s imports nothing from @opentelemetry or src/otel", (_name, file) => {
    for (const specifier of specifiers(file as string)) {
      expect(specifier).not.toMatch(/^@opentelemetry\/|(^|\/)otel(\/|$)/);
    }
  });
});
