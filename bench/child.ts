/**
 * One measurement in a fresh process: one scenario, one subject, one repetition. Bundled by the
 * harness (`bench/lib/processes.ts`) and started with `--expose-gc`; prints its sample after
 * `RESULT_MARK`. A wrong result ends it with exit code 1 before anything is printed.
 */
import { type ChildTask, RESULT_MARK } from "./lib/protocol.js";
import { subject } from "./lib/subjects.js";
import { scenario } from "./scenarios/index.js";

const task = JSON.parse(process.argv[2] ?? "null") as ChildTask | null;
if (task === null) throw new Error("usage: child.js '<task json>' (started by bench/run.ts)");

const factory = await subject(task.subject).load(task.distUrl);
const sample = await scenario(task.scenario).measure(factory, task.params, task.subject);
// Exit explicitly: a peer may leave timers behind that would keep the process alive.
process.stdout.write(`${RESULT_MARK}${JSON.stringify(sample)}\n`, () => process.exit(0));
