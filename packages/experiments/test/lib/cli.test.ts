import * as E from 'fp-ts/Either';
import * as t from 'io-ts';
import fc from 'fast-check';
import { codec } from '@score-sde/tensor-fp';
import { parseFlags, renderHelp, renderCliError, numberFlag, stringFlag, oneOfFlag, listFlag, booleanFlag, optional, toKebab, type CliError } from '../../src/lib/cli';
import { runs } from '@score-sde/tensor-fp/testing';

const spec = {
  epochs: numberFlag(codec.PositiveInt, { description: 'Training epochs.', default: 3 }),
  batchSize: numberFlag(codec.PositiveInt, { description: 'Images per batch.', default: 64 }),
  lr: numberFlag(codec.PositiveFinite, { description: 'Adam learning rate.', default: 2e-4 }),
  sde: oneOfFlag(['ve', 'vp', 'subvp', 'tutorial'], { description: 'Which SDE.', default: 'tutorial' }),
  samplers: listFlag(t.keyof({ em: null, pc: null, ode: null }, 'em|pc|ode'), { description: 'Samplers to run.', default: ['em', 'pc', 'ode'] }),
  resume: optional(stringFlag({ description: 'Checkpoint directory to resume from.' })),
  out: stringFlag({ description: 'Output directory.', default: 'experiments/out' }),
  checkpoint: stringFlag({ description: 'Checkpoint to evaluate.' }),
  quiet: booleanFlag({ description: 'No progress bars.' }),
};

const problems = (r: E.Either<CliError, unknown>): ReadonlyArray<string> =>
  E.isLeft(r) && r.left._tag === 'InvalidFlags' ? r.left.problems : [];

describe('parseFlags', () => {
  it('fills defaults, maps camelCase keys to kebab-case flags, reads --a b and --a=b, lists and switches', () => {
    const r = parseFlags(spec, ['--', '--batch-size', '32', '--lr=1e-3', '--samplers', 'em,ode', '--checkpoint', 'ck', '--quiet']);
    expect(r).toEqual(
      E.right({ epochs: 3, batchSize: 32, lr: 1e-3, sde: 'tutorial', samplers: ['em', 'ode'], resume: undefined, out: 'experiments/out', checkpoint: 'ck', quiet: true }),
    );
  });

  it('--no-flag and --flag=false turn a switch off', () => {
    const a = parseFlags(spec, ['--checkpoint', 'c', '--no-quiet']);
    const b = parseFlags(spec, ['--checkpoint', 'c', '--quiet=false']);
    expect(E.isRight(a) && a.right.quiet).toBe(false);
    expect(E.isRight(b) && b.right.quiet).toBe(false);
  });

  it('round-trips every PositiveInt: parse(["--epochs", String(n)]).epochs = n', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
        const r = parseFlags(spec, ['--epochs', String(n), '--checkpoint', 'c']);
        expect(E.isRight(r) && r.right.epochs).toBe(n);
      }),
      runs(50),
    );
  });

  it('a bad value names the flag, the expected type and what was given', () => {
    expect(problems(parseFlags(spec, ['--epochs', 'ten', '--checkpoint', 'c']))).toEqual(['--epochs: expected PositiveInt, got "ten"']);
    expect(problems(parseFlags(spec, ['--epochs', '2.5', '--checkpoint', 'c']))).toEqual(['--epochs: expected PositiveInt, got "2.5"']);
    expect(problems(parseFlags(spec, ['--lr', '-1', '--checkpoint', 'c']))).toEqual(['--lr: expected PositiveFinite, got "-1"']);
    expect(problems(parseFlags(spec, ['--sde', 'vpp', '--checkpoint', 'c']))).toEqual(['--sde: expected ve|vp|subvp|tutorial, got "vpp"']);
    expect(problems(parseFlags(spec, ['--samplers', 'em,rk4', '--checkpoint', 'c']))).toEqual(['--samplers: expected a comma-separated list of em|pc|ode, got "rk4"']);
  });

  it('rejects unknown flags (suggesting the closest), missing values, repeats, stray arguments and missing required flags — all at once', () => {
    const p = problems(parseFlags(spec, ['--epoch', '3', '--out', '--lr', '1', '--lr', '2', 'stray']));
    expect(p).toEqual([
      'unknown flag --epoch (did you mean --epochs?)',
      '--out: missing value (expected string)',
      '--lr: given more than once',
      'unexpected argument "stray" (flags are written --name value)',
      '--checkpoint: required (Checkpoint to evaluate.)',
    ]);
    expect(problems(parseFlags(spec, ['--checkpoint', 'c', '--frobnicate']))).toEqual(['unknown flag --frobnicate']);
  });

  it('--help or -h anywhere asks for help', () => {
    expect(parseFlags(spec, ['--epochs', 'ten', '--help'])).toEqual(E.left({ _tag: 'HelpRequested' }));
    expect(parseFlags(spec, ['-h'])).toEqual(E.left({ _tag: 'HelpRequested' }));
  });
});

describe('renderHelp', () => {
  it('lists every flag with its placeholder, description and default / required / optional', () => {
    const help = renderHelp(spec, 'nx run experiments:mnist -- [flags]', 'Trains a score model.');
    for (const key of Object.keys(spec)) expect(help).toContain(`--${toKebab(key)}`);
    expect(help).toMatch(/--epochs <PositiveInt>\s+Training epochs\. \(default: 3\)/);
    expect(help).toMatch(/--samplers <em\|pc\|ode,…>\s+Samplers to run\. \(default: em,pc,ode\)/);
    expect(help).toMatch(/--checkpoint <string>\s+Checkpoint to evaluate\. \(required\)/);
    expect(help).toMatch(/--resume <string>\s+Checkpoint directory to resume from\. \(optional\)/);
    expect(help).toMatch(/--quiet\s+No progress bars\.\n/);
    expect(help).toContain('--help, -h');
    expect(help.startsWith('Usage: nx run experiments:mnist -- [flags]\n\nTrains a score model.\n')).toBe(true);
  });

  it('renderCliError prints one line per problem and points to --help', () => {
    expect(renderCliError({ _tag: 'InvalidFlags', problems: ['a', 'b'] })).toBe('error: a\nerror: b\nRun with --help to see every flag.');
  });
});
