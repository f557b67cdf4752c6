/**
 * The drift check (part of `npm test`, cheap: no test is run): `docs/mathematics.md` must be what the identity
 * declarations in the tests render to — titles, formulas, sources, tolerances, test links — ignoring the margins of
 * the run, and the generated `@example` files must be what the doc comments hold.
 *
 * Run: `npm run check:docs`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collect, ROOT } from './collect';
import { DOCS_COMMAND, DOCS_QUICK_COMMAND, render, withoutRun, type MarginsFile } from './render';
import { exampleFiles } from './examples';

/** The path of the document. */
export const DOC = path.join(ROOT, 'docs', 'mathematics.md');
/** The recorded margins. */
export const MARGINS = path.join(ROOT, 'docs', 'margins.json');

/** The committed margins (none recorded when the file is absent). */
export const readMargins = (): MarginsFile =>
  fs.existsSync(MARGINS) ? (JSON.parse(fs.readFileSync(MARGINS, 'utf8')) as MarginsFile) : { run: { date: '', command: DOCS_COMMAND, passed: true }, margins: [] };

/** The first lines where two texts differ (numbered in the second), at most `n`. */
const firstDifferences = (want: string, got: string, n = 6): string[] => {
  const a = want.split('\n');
  const b = got.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < n; i++)
    if (a[i] !== b[i]) out.push(`  line ${i + 1}:\n    committed: ${b[i] ?? '(end of file)'}\n    tests say: ${a[i] ?? '(end of file)'}`);
  return out;
};

/** Problems found (empty when everything is in step). */
export const drift = (): string[] => {
  const problems: string[] = [];
  const want = withoutRun(render(collect(), readMargins()));
  const got = fs.existsSync(DOC) ? withoutRun(fs.readFileSync(DOC, 'utf8')) : '';
  if (want !== got) problems.push(`docs/mathematics.md differs from the identities declared in the tests:\n${firstDifferences(want, got).join('\n')}`);
  for (const { file, text } of exampleFiles()) {
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (current !== text) problems.push(`${path.relative(ROOT, file)} differs from the @example it is generated from`);
  }
  const generated = path.join(ROOT, 'packages', 'experiments', 'examples', 'doc');
  const expected = new Set(exampleFiles().map((e) => e.file));
  if (fs.existsSync(generated))
    fs.readdirSync(generated)
      .map((f) => path.join(generated, f))
      .filter((f) => !expected.has(f))
      .forEach((f) => problems.push(`${path.relative(ROOT, f)} has no @example left to come from`));
  return problems;
};

const main = (): void => {
  let problems: string[];
  try {
    problems = drift();
  } catch (e) {
    problems = [e instanceof Error ? e.message : String(e)];
  }
  if (problems.length > 0) {
    console.error(`check-docs: ${problems.join('\n')}\n\nRegenerate with \`${DOCS_COMMAND}\` (runs the tests for the margins), or \`${DOCS_QUICK_COMMAND}\` (seconds; keeps the margins of docs/margins.json).`);
    process.exit(1);
  }
  console.log(`check-docs: docs/mathematics.md matches the ${collect().length} identities declared in the tests; the @example files match their doc comments`);
};

if (require.main === module) main();
