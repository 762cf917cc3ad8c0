/**
 * Where the time goes in scenario 1 (small bursts): runs it with `--cpu-prof` for each library
 * named (ours, DataLoader with `cache: false` and the `new Promise` floor by default) and prints
 * the top self-time functions and the share of garbage collection.
 *
 *   npx tsx bench/profile.ts [subject ...] [--top 15] [--no-inline]
 *
 * `--no-inline` runs with `--no-turbo-inlining`: slower overall, but time spent in small functions
 * that TurboFan would inline into their callers is billed to them instead.
 *
 * Profiles are kept in node_modules/.cache/async-batcher-bench/profiles/ (open them in Chrome
 * DevTools or VS Code).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { bundleChild, ensureBuilt, runChild } from "./lib/processes.js";
import { subject as findSubject, type SubjectId } from "./lib/subjects.js";
import { ROOT } from "./report.js";
import smallBursts from "./scenarios/small-bursts.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Line {
  name: string;
  selfMs: number;
}

/** Self time by function (name and location), idle excluded; GC and the rest as Node names them. */
function selfTimes(profile: CpuProfile): { lines: Line[]; totalMs: number } {
  const byNode = new Map<number, CallFrame>();
  for (const node of profile.nodes) byNode.set(node.id, node.callFrame);
  const byName = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const frame = byNode.get(profile.samples[i] as number);
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    if (frame === undefined || frame.functionName === "(idle)") continue;
    const where = frame.url === "" ? "" : ` ${basename(frame.url)}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || "(anonymous)"}${where}`;
    byName.set(name, (byName.get(name) ?? 0) + ms);
    total += ms;
  }
  const lines = [...byName].map(([name, selfMs]) => ({ name, selfMs }));
  lines.sort((a, b) => b.selfMs - a.selfMs);
  return { lines, totalMs: total };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf("--top");
  const top = topIndex === -1 ? 15 : Number(args[topIndex + 1]);
  const noInline = args.includes("--no-inline");
  const named = args.filter(
    (a, i) => !a.startsWith("--") && (topIndex === -1 || i !== topIndex + 1),
  );
  const subjects = (
    named.length > 0 ? named : ["async-batcher", "dataloader", "floor-promise"]
  ).map((id) => findSubject(id as SubjectId).id);
  const distUrl = ensureBuilt(ROOT);
  const childPath = await bundleChild(ROOT);
  const dir = join(ROOT, "node_modules", ".cache", "async-batcher-bench", "profiles");
  mkdirSync(dir, { recursive: true });
  const plan = smallBursts.plan(false);

  for (const id of subjects) {
    const name = `small-bursts-${id}${noInline ? "-no-inline" : ""}.cpuprofile`;
    rmSync(join(dir, name), { force: true });
    const sample = await runChild(
      ROOT,
      childPath,
      { scenario: smallBursts.id, subject: id, params: plan.params, distUrl },
      plan.timeoutMs,
      [
        "--cpu-prof",
        `--cpu-prof-dir=${dir}`,
        `--cpu-prof-name=${name}`,
        "--cpu-prof-interval=50",
        ...(noInline ? ["--no-turbo-inlining"] : []),
      ],
    );
    if (!readdirSync(dir).includes(name)) throw new Error(`no profile written for ${id}`);
    const profile = JSON.parse(readFileSync(join(dir, name), "utf8")) as CpuProfile;
    const { lines, totalMs } = selfTimes(profile);
    const gc = lines.find((l) => l.name === "(garbage collector)")?.selfMs ?? 0;
    // Per item over the whole process (warm-up included): comparable across libraries, which
    // run different numbers of bursts.
    const items = Number(sample.processed);
    const perItem = (ms: number) => `${((ms * 1e6) / items).toFixed(1).padStart(6)} ns/item`;
    process.stdout.write(
      `\n${id}: ${Number(sample.nsPerItem).toFixed(0)} ns/item (median timed burst, profiler on); busy ${perItem(totalMs).trim()} over ${items} items, GC ${((gc / totalMs) * 100).toFixed(1)}% (${perItem(gc).trim()})\n`,
    );
    for (const line of lines.slice(0, top)) {
      const share = ((line.selfMs / totalMs) * 100).toFixed(1).padStart(5);
      process.stdout.write(`  ${share}%  ${perItem(line.selfMs)}  ${line.name}\n`);
    }
    process.stdout.write(`  profile: ${join(dir, name)}\n`);
  }
}

await main();
