/**
 * Real processes for the fault tests: a command started as `node --import tsx <script> …` (what
 * `npx nx run experiments:<name>` runs), tiny flags so that a whole run takes about a second, the fault hooks of models/faults (pause points, ENOSPC,
 * NaN steps) set through the environment, and comparisons of what a run leaves on disk.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import * as E from 'fp-ts/Either';
import { tensorFiles } from '@score-sde/models';

/** The workspace root (commands run from there, as nx runs them). */
export const ROOT = path.resolve(__dirname, '../../../..');
/**
 * tsx as a loader of this node process (`node --import tsx script.ts`), not its CLI: the CLI runs the script in a
 * child process, so a SIGKILL of the CLI would leave the real run going on as an orphan.
 */
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href;

/** The command scripts. */
export const SCRIPTS = {
  mnist: 'packages/experiments/src/mnist.ts',
  'mnist-eval': 'packages/experiments/src/mnist-eval.ts',
  toy: 'packages/experiments/src/toy.ts',
  merge: 'packages/experiments/src/merge.ts',
  'torch-export': 'packages/experiments/src/torch-export.ts',
  'torch-import': 'packages/experiments/src/torch-import.ts',
} as const;
export type CommandName = keyof typeof SCRIPTS;

/** How a process ended and what it wrote. */
export interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A started command: the child, its output so far, and its end. */
export interface Started {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly ended: Promise<Ended>;
}

/**
 * Starts a command as `node --import tsx <script> …` (what `npx nx run experiments:<name>` runs, in one process, so
 * signals reach the run itself). The wasm backend runs single-threaded (a tiny network gains nothing from threads and the process
 * starts faster); `env` adds variables (the fault hooks).
 */
export const start = (name: CommandName, args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Started => {
  const child = spawn(process.execPath, ['--import', TSX_LOADER, SCRIPTS[name], ...args], {
    cwd: ROOT,
    env: { ...process.env, SCORE_SDE_WASM_THREADS: 'off', FORCE_COLOR: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  live.add(child);
  const ended = new Promise<Ended>((resolve) =>
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, output: () => stdout + stderr, ended };
};

const live = new Set<ChildProcess>();

/** Kills every command this test file started that still runs (a failed test must not leave a paused run behind). */
export const killStragglers = (): void => {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
};

/** Runs a command to its end. */
export const runCommand = (name: CommandName, args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Promise<Ended> => start(name, args, env).ended;

/** A fresh temporary directory. */
export const tempDir = (name: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `score-sde-faults-${name}-`));

/**
 * The flags of a tiny MNIST run of the default recipe (the quick preset: the EDM recipe, whatever it is) with only its
 * sizes overridden: 64 images, batch 16, 2 epochs (8 steps), a 4/8/8/8-channel network with an 8-d embedding, a
 * checkpoint every `checkpointEvery` steps (default 2; 0 is the command's default cadence, end of epoch only), 4
 * samples with Euler–Maruyama (6 steps) and DPM-Solver++ (3 steps), and no guide (its save would shift the write
 * counts the fault points name).
 */
export const tinyMnist = (out: string, o: { readonly checkpointEvery?: number; readonly extra?: ReadonlyArray<string> } = {}): ReadonlyArray<string> => [
  '--subset', '64', '--batch-size', '16', '--epochs', '2', '--channels', '4,8,8,8', '--embed-dim', '8', '--checkpoint-every', String(o.checkpointEvery ?? 2),
  '--samplers', 'em,dpm', '--steps', '6', '--fast-steps', '3', '--num-samples', '4', '--guide-at', '0', '--backend', 'wasm', '--quiet', '--out', out, ...(o.extra ?? []),
];

/** Environment that pauses the process at the given points (models/faults), signalling through `signal`. */
export const pauseAt = (signal: string, ...points: ReadonlyArray<string>): Record<string, string> => ({ SCORE_SDE_FAULT_PAUSE: points.join(','), SCORE_SDE_FAULT_SIGNAL: signal });

/** Waits until the paused process has written `signal` (its content: the point's name); fails if the process ends first. */
export const waitForPause = async (p: Started, signal: string, timeoutMs = 60_000): Promise<string> => {
  const deadline = Date.now() + timeoutMs;
  let ended: Ended | undefined;
  void p.ended.then((e) => (ended = e));
  while (Date.now() < deadline) {
    if (fs.existsSync(signal)) return fs.readFileSync(signal, 'utf8').split('\n')[0]!;
    if (ended !== undefined) throw new Error(`the process ended (code ${ended.code}) before pausing:\n${ended.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no pause within ${timeoutMs} ms:\n${p.output()}`);
};

/** Lets a paused process go on. */
export const resume = (signal: string): void => fs.rmSync(signal, { force: true });

/** The files of a stored directory's current version (name ↦ bytes), or the problem reading it. */
export const storedFiles = async (dir: string): Promise<E.Either<string, Readonly<Record<string, Buffer>>>> => {
  if (!fs.existsSync(dir)) return E.left(`${dir}: no such directory`);
  const at = await tensorFiles.storedDirectory(dir);
  if (E.isLeft(at)) return E.left(at.left.message);
  const files = fs.readdirSync(at.right).filter((f) => !f.startsWith('.'));
  return E.right(Object.fromEntries(files.map((f) => [f, fs.readFileSync(path.join(at.right, f))])));
};

/** The step recorded in a checkpoint's manifest. */
export const stepOf = (files: Readonly<Record<string, Buffer>>): number => (JSON.parse(files['manifest.json']!.toString('utf8')) as { step: number }).step;

/** Every file of a folder (recursively, dot-files included) with its bytes, for "nothing changed" checks. */
export const snapshot = (dir: string): Readonly<Record<string, string>> => {
  const out: Record<string, string> = {};
  const walk = (sub: string): void => {
    for (const f of fs.readdirSync(path.join(dir, sub)).sort()) {
      const rel = path.join(sub, f);
      if (fs.statSync(path.join(dir, rel)).isDirectory()) walk(rel);
      else out[rel] = fs.readFileSync(path.join(dir, rel)).toString('base64');
    }
  };
  walk('');
  return out;
};

/** A stack trace line (`    at fn (file:line:col)`): commands must never print one. */
export const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;

// -------------------------------------------------------------------------------------
// a real full disk
// -------------------------------------------------------------------------------------

/**
 * Whether this machine lets an unprivileged process mount a tmpfs in its own user and mount namespace
 * (`unshare -rm`): then a test can give a run a really full disk. Checked once.
 */
export const tmpfsAvailable = ((): (() => boolean) => {
  let known: boolean | undefined;
  return () => {
    if (known === undefined) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmpfs-probe-'));
      const r = spawnSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$0" && echo mounted', dir], { encoding: 'utf8' });
      known = r.status === 0 && r.stdout.trim() === 'mounted';
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return known;
  };
})();

/**
 * Runs a command with its working folder `mount` on a tmpfs of `size` (e.g. "160k"), in a user and mount namespace of
 * its own: `setup` (shell, with $M the mount point) runs first, then the command; afterwards everything on the tmpfs
 * is copied into `keep` (the tmpfs disappears with the namespace). The command's exit code is the result's.
 */
export const runOnTmpfs = (name: CommandName, size: string, mount: string, keep: string, setup: string, args: ReadonlyArray<string>): Promise<Ended> => {
  fs.mkdirSync(mount, { recursive: true });
  fs.mkdirSync(keep, { recursive: true });
  const script = `M="$0"; K="$1"; shift 1; mount -t tmpfs -o size=${size} tmpfs "$M" || exit 99; ${setup}; "$@"; code=$?; cp -a "$M/." "$K/"; exit $code`;
  const child = spawn('unshare', ['-rm', 'sh', '-c', script, mount, keep, process.execPath, '--import', TSX_LOADER, path.join(ROOT, SCRIPTS[name]), ...args], {
    cwd: ROOT,
    env: { ...process.env, SCORE_SDE_WASM_THREADS: 'off', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
};
