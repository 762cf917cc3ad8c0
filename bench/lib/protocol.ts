/** What the parent sends a child process and how the child answers. */
import type { SubjectId } from "./subjects.js";

export interface ChildTask {
  scenario: string;
  subject: SubjectId;
  params: unknown;
  /** `file:` URL of our built `dist/index.js`. */
  distUrl: string;
}

/** The child prints its sample as one JSON line after this mark on stdout. */
export const RESULT_MARK = "@@bench-sample ";
