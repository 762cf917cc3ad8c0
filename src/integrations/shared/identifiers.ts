import { describe } from "../../options.js";

/**
 * A list of distinct identifiers, at least one, each checked by `check` (the database's own
 * rules). `fold` gives the form two names must not share: the name itself where identifiers are
 * case-sensitive (PostgreSQL, quoted), lower case where they are not (MySQL column names).
 */
export function identifierList(
  option: string,
  value: unknown,
  check: (option: string, value: unknown) => string,
  fold: (name: string) => string = (name) => name,
  why = "",
): string[] {
  if (!Array.isArray(value)) {
    throw new TypeError(`${option} must be an array of column names, got ${describe(value)}`);
  }
  if (value.length === 0) throw new TypeError(`${option} must name at least one column`);
  const seen = new Set<string>();
  return value.map((name: unknown, i) => {
    const checked = check(`${option}[${i}]`, name);
    const folded = fold(checked);
    if (seen.has(folded))
      throw new TypeError(`${option} names ${JSON.stringify(checked)} twice${why}`);
    seen.add(folded);
    return checked;
  });
}
