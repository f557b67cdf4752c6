/**
 * Static collection of the identities the tests declare: every `const x = identity({ … })` in
 * `packages/*\/test/**\/*.ts`, read with the TypeScript parser (no test is run), with the tests that check it
 * (the `test(…)` / `it(…)` calls whose body names `x`) and their lines.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { CONCEPTS, type Concept, type Declaration } from '@score-sde/tensor-fp/testing';

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..', '..');

/** A test that checks an identity: its title as written (template parts as `${…}`) and the line of the title. */
export interface TestRef {
  readonly name: string;
  readonly line: number;
}

/** A declaration found in a test file, with where it is and the tests that check it. */
export interface Declared extends Declaration {
  readonly file: string;
  readonly line: number;
  readonly tests: ReadonlyArray<TestRef>;
}

const FIELDS = ['concept', 'title', 'formula', 'source', 'tolerance'] as const;
const TEST_FUNCTIONS = new Set(['test', 'it']);

const walk = (node: ts.Node, visit: (n: ts.Node) => void): void => {
  visit(node);
  node.forEachChild((c) => walk(c, visit));
};

/** All `.ts` files under a directory, sorted. */
const tsFiles = (dir: string): string[] =>
  fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []))
        .sort()
    : [];

/** The test files of every package. */
export const testFiles = (): string[] =>
  fs
    .readdirSync(path.join(ROOT, 'packages'))
    .sort()
    .flatMap((p) => tsFiles(path.join(ROOT, 'packages', p, 'test')));

/** Whether `callee` is test/it, test.each(…), test.failing, it.each(…) etc. */
const isTestCallee = (callee: ts.Expression): boolean => {
  if (ts.isIdentifier(callee)) return TEST_FUNCTIONS.has(callee.text);
  if (ts.isPropertyAccessExpression(callee)) return isTestCallee(callee.expression);
  if (ts.isCallExpression(callee)) return isTestCallee(callee.expression);
  return false;
};

const lineOf = (sf: ts.SourceFile, node: ts.Node): number => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;

/** A test title as written: literal text, template substitutions kept as `${…}`. */
const titleText = (sf: ts.SourceFile, e: ts.Expression): string =>
  ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) ? e.text : e.getText(sf).replace(/^`|`$/g, '');

/**
 * Collects the declarations of one file. Fails (throws, naming file and line) when a field is not a literal, the
 * concept is unknown, or no test in the file checks the identity.
 */
export const collectFile = (file: string): Declared[] => {
  const text = fs.readFileSync(file, 'utf8');
  if (!text.includes('identity(')) return [];
  const rel = path.relative(ROOT, file).split(path.sep).join('/');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const where = (n: ts.Node): string => `${rel}:${lineOf(sf, n)}`;

  // Top-level string constants, so a tolerance shared by several identities can be written once.
  const constants = new Map<string, ts.Expression>();
  sf.statements.forEach((st) => {
    if (ts.isVariableStatement(st))
      st.declarationList.declarations.forEach((d) => {
        if (ts.isIdentifier(d.name) && d.initializer !== undefined) constants.set(d.name.text, d.initializer);
      });
  });
  const literal = (e: ts.Expression): string => {
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
    if (ts.isParenthesizedExpression(e)) return literal(e.expression);
    if (ts.isTaggedTemplateExpression(e) && e.tag.getText(sf) === 'String.raw' && ts.isNoSubstitutionTemplateLiteral(e.template))
      return e.template.rawText ?? e.template.text;
    if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken) return literal(e.left) + literal(e.right);
    if (ts.isIdentifier(e) && constants.has(e.text)) return literal(constants.get(e.text)!);
    throw new Error(`${where(e)}: an identity's fields must be string literals (or String.raw templates, + of them, or a top-level constant of them), got \`${e.getText(sf)}\``);
  };

  const declared: Array<Omit<Declared, 'tests'> & { name: string }> = [];
  const tests: Array<TestRef & { names: Set<string> }> = [];
  walk(sf, (n) => {
    if (ts.isVariableDeclaration(n) && n.initializer !== undefined && ts.isCallExpression(n.initializer) && ts.isIdentifier(n.initializer.expression) && n.initializer.expression.text === 'identity') {
      const arg = n.initializer.arguments[0];
      if (!ts.isIdentifier(n.name) || arg === undefined || !ts.isObjectLiteralExpression(arg)) throw new Error(`${where(n)}: write \`const name = identity({ … })\` with an object literal`);
      const fields = new Map<string, string>();
      arg.properties.forEach((p) => {
        if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name)) throw new Error(`${where(p)}: only \`key: literal\` properties are allowed in an identity`);
        if (!(FIELDS as ReadonlyArray<string>).includes(p.name.text)) throw new Error(`${where(p)}: unknown identity field "${p.name.text}" (fields: ${FIELDS.join(', ')})`);
        fields.set(p.name.text, literal(p.initializer));
      });
      FIELDS.forEach((f) => {
        if (!fields.has(f) || fields.get(f)!.trim() === '') throw new Error(`${where(n)}: the identity lacks its "${f}"`);
      });
      const concept = fields.get('concept')!;
      if (!(concept in CONCEPTS)) throw new Error(`${where(n)}: unknown concept "${concept}" (one of ${Object.keys(CONCEPTS).join(', ')})`);
      declared.push({
        name: n.name.text,
        concept: concept as Concept,
        title: fields.get('title')!,
        formula: fields.get('formula')!,
        source: fields.get('source')!,
        tolerance: fields.get('tolerance')!,
        file: rel,
        line: lineOf(sf, n),
      });
    }
    if (ts.isCallExpression(n) && isTestCallee(n.expression) && n.arguments.length >= 2) {
      const [title] = n.arguments;
      const body = n.arguments[n.arguments.length - 1]!;
      if (title === undefined || !(ts.isArrowFunction(body) || ts.isFunctionExpression(body))) return;
      const names = new Set<string>();
      walk(body, (m) => {
        if (ts.isIdentifier(m)) names.add(m.text);
      });
      tests.push({ name: titleText(sf, title), line: lineOf(sf, title), names });
    }
  });
  return declared.map(({ name, ...d }) => {
    const checking = tests.filter((t) => t.names.has(name)).map(({ name: n, line }) => ({ name: n, line }));
    if (checking.length === 0) throw new Error(`${rel}:${d.line}: identity "${d.title}" (${name}) is declared but no test in this file names it`);
    return { ...d, tests: checking };
  });
};

/** Every declaration of every package's tests; fails on a duplicate title. */
export const collect = (): Declared[] => {
  const all = testFiles().flatMap(collectFile);
  const seen = new Map<string, Declared>();
  all.forEach((d) => {
    const prev = seen.get(d.title);
    if (prev !== undefined) throw new Error(`identity title "${d.title}" is declared twice: ${prev.file}:${prev.line} and ${d.file}:${d.line}`);
    seen.set(d.title, d);
  });
  return all;
};
