/**
 * Renders `docs/mathematics.md` from the declared identities (static) and the margins of a test run. Everything that
 * comes from the run is wrapped in `<!-- run -->…<!-- /run -->`, so the drift check can compare the rest exactly.
 */
import { CONCEPTS, type Concept, type Margin } from '@score-sde/tensor-fp/testing';
import type { Declared } from './collect';

/** The recorded margins of a run (`docs/margins.json`). */
export interface MarginsFile {
  readonly run: { readonly date: string; readonly command: string; readonly passed: boolean };
  readonly margins: ReadonlyArray<Margin>;
}

/** The command that regenerates the document (and the one that only re-renders it). */
export const DOCS_COMMAND = 'npm run docs';
export const DOCS_QUICK_COMMAND = 'npm run docs -- --no-test';

const RUN_OPEN = '<!-- run -->';
const RUN_CLOSE = '<!-- /run -->';
const run = (s: string): string => `${RUN_OPEN}${s}${RUN_CLOSE}`;

/** The document with every run-derived part blanked (what the drift check compares). */
export const withoutRun = (doc: string): string => doc.replace(/<!-- run -->[\s\S]*?<!-- \/run -->/g, RUN_OPEN + RUN_CLOSE);

const INTRO: Record<Concept, string> = {
  sde: 'An SDE is a JSON record (`vp`, `subvp`, `ve`, `tutorial`); its drift f(t)·x, diffusion g(t) and the marginal kernel N(m(t) x₀, s(t)² I) are pure functions of it. These identities tie the closed forms to the SDE they come from.',
  reverse: 'Given the score ∇ log p_t, the reverse-time SDE (Song et al. 2021, eq. 6) and the probability-flow ODE (eq. 13) have the same marginals as the forward SDE. Checked with exact scores of Gaussians and Gaussian mixtures.',
  discretisation: 'The N-step chains of DDPM and SMLD, the time grids samplers run on, and the orders of the Runge–Kutta steps on the probability-flow ODE, whose solution is known in closed form for Gaussian data.',
  mixture: 'A diagonal Gaussian mixture stays a Gaussian mixture under every SDE here, so p_t, ∇ log p_t, log p_0 and conditionals are known in closed form: the oracle every sampler test is measured against.',
  steps: 'A sampler is a grid, a step and a score. Steps compose (`andThen`, `pc`, `repeat`); these are the laws the combinators obey, checked on observable states (bit-identical), and the invariance of p_t under the correctors.',
  conformance: 'Every sampler, run with the exact score of Gaussian mixtures under VP, sub-VP and VE, must reproduce the exact marginal p_ε: component weights and per-component means and variances, each within 5 standard errors. The table gives, per sampler and case, the worst of these checks in standard errors.',
  likelihood: 'log p_0(x) by the probability-flow ODE (Song et al. 2021, App. D.2): the instantaneous change of variables with the exact divergence, the Skilling–Hutchinson estimate, bits/dim and dequantisation.',
  guidance: 'Conditional scores: classifier guidance with the exact noise-conditional classifier of a mixture, exact observation guidance through the closed-form p(y | x_t), and inpainting.',
  denoised: 'The denoised endpoint x̄ = E[x₀ | x_t] (Tweedie) that samplers return at their last step.',
  random: 'Counter-based random numbers (Threefry-2x32): known answers, splittable keys, and the distributions drawn from them.',
  kernels: 'The tensor kernels the toolkit supplies or replaces (convolutions, GroupNorm, swish, matrix products) against TensorFlow.js references, within float32 rounding bounds γ_n Σ|terms| (Higham 2002, §3.1).',
  training: 'Denoising score matching and its discrete forms, the optimiser, the EMA and the networks: identities with the exact score of a point mass, hand-computed steps and parameter counts.',
  evaluation: 'The statistics of the evaluations: the Fréchet distance and its matrix functions, the energy distance, and the sample statistics behind them.',
};

const fmt = (x: number): string => (x === 0 ? '0' : !Number.isFinite(x) ? String(x) : Math.abs(x) >= 0.01 ? x.toFixed(2) : x.toExponential(1));

const slug = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .trim()
    .replace(/ /g, '-');

interface Summary {
  readonly text: string;
  readonly failed: boolean;
}

/** The worst statistic of each kind over some margins, e.g. "0.33 of the bound; 2.10 SE (limit 5)". */
const summarise = (ms: ReadonlyArray<Margin>): Summary => {
  const kinds = (['se', 'bound', 'exact'] as const).flatMap((kind) => {
    const of = ms.filter((m) => m.kind === kind);
    if (of.length === 0) return [];
    const worst = of.reduce((a, b) => ((kind === 'se' ? b.worst / b.limit > a.worst / a.limit : b.worst > a.worst) ? b : a));
    return [kind === 'se' ? `${fmt(worst.worst)} SE (limit ${fmt(worst.limit)})` : kind === 'bound' ? `${fmt(worst.worst)} of the bound` : 'exact'];
  });
  const failed = ms.reduce((a, m) => a + m.failed, 0);
  const checks = ms.reduce((a, m) => a + m.checks, 0);
  const head = failed > 0 ? `❌ **fails** (${failed} of ${checks} comparisons): ` : '';
  return { text: `${head}${kinds.join('; ')}`, failed: failed > 0 };
};

const whereText = (w: Margin['where']): string => (w === undefined ? '' : ` [${Object.values(w).join(', ')}]`);

/** A table of instances: rows by the first `where` key, columns by the others. */
const pivot = (ms: ReadonlyArray<Margin>): string => {
  const keys = Object.keys(ms[0]!.where!);
  const [rowKey, ...colKeys] = keys;
  const rows = [...new Set(ms.map((m) => m.where![rowKey!]!))];
  const cols = [...new Set(ms.map((m) => colKeys.map((k) => m.where![k]).join(' · ')))];
  const cell = (r: string, c: string): string => {
    const of = ms.filter((m) => m.where![rowKey!] === r && colKeys.map((k) => m.where![k]).join(' · ') === c);
    if (of.length === 0) return '—';
    const s = summarise(of);
    const se = of.filter((m) => m.kind === 'se');
    const worst = se.length === 0 ? s.text : fmt(Math.max(...se.map((m) => m.worst)));
    return s.failed ? `❌ ${worst}` : worst;
  };
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    `| ${esc(rowKey!)} | ${cols.map(esc).join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    ...rows.map((r) => `| ${esc(r)} | ${cols.map((c) => cell(r, c)).join(' | ')} |`),
  ].join('\n');
};

const testLink = (d: Declared, t: { name: string; line: number }): string => `[${d.file.replace(/^packages\//, '')}:${t.line}](../${d.file}#L${t.line}) — ${t.name.replace(/\|/g, '\\|')}`;

const entry = (d: Declared, margins: ReadonlyArray<Margin>): string => {
  const ms = margins.filter((m) => m.title === d.title);
  const tests = new Set(ms.map((m) => m.test)).size;
  const checks = ms.reduce((a, m) => a + m.checks, 0);
  const margin =
    ms.length === 0
      ? run('not measured in the last run')
      : run(`${summarise(ms).text} — ${checks} comparison${checks === 1 ? '' : 's'} in ${tests} test${tests === 1 ? '' : 's'}`);
  const lines = [
    `### ${d.title}`,
    '',
    d.formula,
    '',
    `- **Source:** ${d.source}`,
    `- **Tolerance:** ${d.tolerance}`,
    `- **Last margin:** ${margin}`,
    ...(d.tests.length === 1 ? [`- **Test:** ${testLink(d, d.tests[0]!)}`] : [`- **Tests:**`, ...d.tests.map((t) => `  - ${testLink(d, t)}`)]),
  ];
  const tabular = ms.length > 0 && ms.every((m) => m.where !== undefined && Object.keys(m.where).length >= 2);
  const detail =
    ms.length <= 1
      ? ''
      : tabular
        ? `\n${RUN_OPEN}\n\n${pivot(ms)}\n\n${RUN_CLOSE}`
        : `\n${RUN_OPEN}\n<details><summary>Per test</summary>\n\n${[...new Set(ms.map((m) => m.test + whereText(m.where)))]
            .map((k) => `- ${k.replace(/\|/g, '\\|')}: ${summarise(ms.filter((m) => m.test + whereText(m.where) === k)).text}`)
            .join('\n')}\n\n</details>\n${RUN_CLOSE}`;
  return lines.join('\n') + detail;
};

/** The whole document. */
export const render = (declared: ReadonlyArray<Declared>, margins: MarginsFile): string => {
  const concepts = Object.keys(CONCEPTS) as Concept[];
  const failing = declared.filter((d) => summarise(margins.margins.filter((m) => m.title === d.title)).failed);
  const head = [
    '# The mathematics the tests check',
    '',
    `<!-- Generated by \`${DOCS_COMMAND}\` from the identities declared in the tests (tools/mathdoc). Do not edit by hand: \`npm test\` fails when this file and the declarations differ. -->`,
    '',
    'Every identity below is declared, as data, next to the test that checks it (`identity({ concept, title, formula, source, tolerance })` from `@score-sde/tensor-fp/testing`), and that test asserts it through the declaration, which records how close the run came to the tolerance.',
    'Read an entry as: the **formula** holds, for the reason given under **Source**; the test checks it numerically within the **Tolerance**, whose derivation is given; the **Last margin** is the worst statistic of the last recorded run — for a rounding or truncation bound the error as a fraction of the bound (below 1 passes), for a Monte-Carlo check the error in standard errors against its limit, `exact` for laws checked bit for bit. A failing identity is marked ❌.',
    '',
    `Regenerate with \`${DOCS_COMMAND}\` (runs every package's tests and records their margins, ≈ 10 minutes on 2 cores), or \`${DOCS_QUICK_COMMAND}\` (seconds: re-renders the declarations with the margins kept in \`docs/margins.json\`).`,
    '',
    `Last run: ${run(`${margins.run.date === '' ? 'none recorded' : margins.run.date} (\`${margins.run.command}\`)${margins.run.passed ? '' : ', some tests failed'}${failing.length > 0 ? `; ❌ failing identities: ${failing.map((d) => d.title).join(', ')}` : ''}`)}.`,
    '',
    '## Contents',
    '',
    ...concepts.map((c, i) => `${i + 1}. [${CONCEPTS[c]}](#${slug(CONCEPTS[c])}) — ${declared.filter((d) => d.concept === c).length} identities`),
  ];
  const sections = concepts.flatMap((c) => {
    const ds = declared.filter((d) => d.concept === c);
    return ['', `## ${CONCEPTS[c]}`, '', INTRO[c], ...(ds.length === 0 ? ['', '_No identity declared yet._'] : ds.flatMap((d) => ['', entry(d, margins.margins)]))];
  });
  return `${[...head, ...sections].join('\n')}\n`;
};
