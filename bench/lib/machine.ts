/** The machine and the versions a run measured, for the report's header. */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { SUBJECTS } from "./subjects.js";

export interface Machine {
  cpu: string;
  cores: number;
  memoryBytes: number;
  node: string;
  v8: string;
  os: string;
  arch: string;
  /** 1-minute load average when the run started and ended: how busy the shared machine was. */
  loadStart: number;
  loadEnd: number;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    v8: process.versions.v8,
    os: `${os.type()} ${os.release()} (${os.platform()})`,
    arch: os.arch(),
    loadStart: os.loadavg()[0] ?? 0,
    loadEnd: os.loadavg()[0] ?? 0,
  };
}

export function packageVersion(root: string, name: string): string {
  const json = JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8"));
  return String((json as { version?: unknown }).version);
}

/** Versions of our library (with a hash of the built file measured) and of every peer. */
export function versions(root: string): Record<string, string> {
  const own = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const dist = readFileSync(join(root, "dist", "index.js"));
  const hash = createHash("sha256").update(dist).digest("hex").slice(0, 12);
  const result: Record<string, string> = {
    "async-batcher": `${own.version} (dist/index.js sha256 ${hash})`,
  };
  for (const s of SUBJECTS) {
    if (s.package !== undefined) result[s.package] = packageVersion(root, s.package);
  }
  return result;
}
