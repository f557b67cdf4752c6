import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { atomicWriteFile, runId, markdownTable, markdownKeyValue, formatNumber, toReportJson, writeReport } from '../../src/lib/report';
import { runs } from '@score-sde/tensor-fp/testing';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-test-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('atomicWriteFile', () => {
  it('writes the content, creates parent directories and leaves no temp file', async () => {
    const target = path.join(dir, 'a', 'b', 'out.txt');
    const r = await atomicWriteFile(target, 'hello\n')();
    expect(E.isRight(r)).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('hello\n');
    expect(fs.readdirSync(path.dirname(target))).toEqual(['out.txt']);
  });

  it('replaces an existing file whole', async () => {
    const target = path.join(dir, 'out.bin');
    fs.writeFileSync(target, 'old content that is longer');
    expect(E.isRight(await atomicWriteFile(target, new Uint8Array([1, 2, 3]))())).toBe(true);
    expect(Array.from(fs.readFileSync(target))).toEqual([1, 2, 3]);
    expect(fs.readdirSync(dir)).toEqual(['out.bin']);
  });

  it('on failure (the target is a non-empty directory) returns an IoError naming the path, leaves the target alone and no temp file', async () => {
    const target = path.join(dir, 'taken');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep.txt'), 'keep');
    const r = await atomicWriteFile(target, 'x')();
    expect(E.isLeft(r) && r.left.path).toBe(target);
    expect(fs.readdirSync(dir)).toEqual(['taken']);
    expect(fs.readFileSync(path.join(target, 'keep.txt'), 'utf8')).toBe('keep');
  });
});

describe('runId', () => {
  it('is YYYYMMDD-HHMMSS-mmm in UTC, with no character a file system could object to', () => {
    expect(runId(new Date(Date.UTC(2025, 0, 31, 9, 30, 5, 42)))).toBe('20250131-093005-042');
  });

  it('sorts like time: t₁ < t₂ ⇒ runId(t₁) ≤ runId(t₂) (lexicographic)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4e12 }), fc.integer({ min: 0, max: 4e12 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const [x, y] = [runId(new Date(lo)), runId(new Date(hi))];
        expect(x <= y).toBe(true);
        expect(x).toMatch(/^\d{8}-\d{6}-\d{3}$/);
      }),
      runs(100),
    );
  });
});

describe('markdown and JSON', () => {
  it('markdownTable: header from the keys, numeric columns right-aligned, cells escaped', () => {
    const t = markdownTable([
      { sampler: 'em', nfe: 1000, fid: 12.3456789 },
      { sampler: 'pc|x', nfe: 2000, fid: NaN },
    ]);
    expect(t).toBe(['| sampler | nfe | fid |', '| --- | ---: | ---: |', '| em | 1000 | 12.35 |', '| pc\\|x | 2000 | NaN |'].join('\n'));
  });

  it('markdownKeyValue flattens nested records with dots', () => {
    expect(markdownKeyValue({ sde: { kind: 've', sigmaMax: 50 }, seeds: [1, 2] })).toBe(
      ['| key | value |', '| --- | --- |', '| sde.kind | ve |', '| sde.sigmaMax | 50 |', '| seeds | 1, 2 |'].join('\n'),
    );
  });

  it('formatNumber: integers as is, 4 significant digits, exponents outside [1e-3, 1e6)', () => {
    expect([formatNumber(3), formatNumber(0.123456), formatNumber(1.5e-5), formatNumber(2.5e7 + 0.5), formatNumber(25e6), formatNumber(-Infinity)]).toEqual(['3', '0.1235', '1.5e-5', '2.5e+7', '25000000', '−∞']);
  });

  it('report JSON keeps non-finite numbers and typed arrays readable', () => {
    expect(JSON.parse(toReportJson({ a: NaN, b: Infinity, c: new Float32Array([1, 2]) }))).toEqual({ a: 'NaN', b: 'Infinity', c: [1, 2] });
  });

  it('writeReport writes <base>.json and <base>.md', async () => {
    const r = await writeReport(dir, { fid: 1.5 }, '# Eval', 'eval')();
    expect(E.isRight(r)).toBe(true);
    expect(fs.readdirSync(dir).sort()).toEqual(['eval.json', 'eval.md']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'eval.json'), 'utf8'))).toEqual({ fid: 1.5 });
    expect(fs.readFileSync(path.join(dir, 'eval.md'), 'utf8')).toBe('# Eval\n');
  });
});
