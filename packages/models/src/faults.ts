/**
 * Test-only fault injection. Off unless one of these environment variables is set; the process tests of the
 * experiments use them to put a real run into the states a user meets by accident (a full disk, a NaN loss, a kill
 * in the middle of a save) at a chosen, reproducible moment:
 *
 *   SCORE_SDE_FAULT_ENOSPC=<point>[@k]   the k-th arrival (default the first) at a `write:` point fails the way a full
 *                                        disk does: a Node error with code ENOSPC, errno −28, syscall "write"
 *   SCORE_SDE_FAULT_PAUSE=<point>[@k],…  the k-th arrival at <point> writes the point's name into the file
 *                                        SCORE_SDE_FAULT_SIGNAL and waits until that file is removed (the test
 *                                        meanwhile sends a signal or kills the process); several points, comma-separated,
 *                                        pause one after the other
 *   SCORE_SDE_FAULT_SIGNAL=<file>        see above (required with PAUSE)
 *   SCORE_SDE_FAULT_NAN_STEP=<s>         the batch of training step s (1-based) is NaN, so that step's loss is NaN
 *   SCORE_SDE_FAULT_INF_STEP=<s>         the batch of training step s is multiplied by +∞ (a non-finite loss or gradient)
 *
 * Points (exact names; `*` at the end of a pattern matches any rest):
 *   write:<file name>     before a file's bytes are written (its temporary file is open): every writer of the
 *                         project (checkpoint and classifier files, CURRENT, report/PNG/IDX artefacts)
 *   pointer:<dir name>    before a stored directory's CURRENT is renamed into place (tensor-files)
 *   cleanup:<dir name>    after that, before the directory's older versions are removed
 *   step:<s>              before training step s (1-based) is computed
 *   sample:<name>:<i>     before step i (1-based) of sampler <name>
 *
 * A malformed variable is an error naming it ({@link faultsFromEnv}); the commands check it first.
 *
 * @module faults
 */
import * as fs from 'node:fs';
import * as E from 'fp-ts/Either';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A point pattern and the arrival it fires at. @category model */
export interface Trigger {
  readonly pattern: string;
  readonly occurrence: number;
}

/** The faults a process is asked to inject. @category model */
export interface FaultPlan {
  readonly enospc?: Trigger;
  readonly pause?: { readonly at: ReadonlyArray<Trigger>; readonly signal: string };
  readonly nanStep?: number;
  readonly infStep?: number;
}

// -------------------------------------------------------------------------------------
// parsing
// -------------------------------------------------------------------------------------

const TRIGGER = /^([^@\s]+)(?:@([1-9]\d*))?$/;

const trigger = (name: string, raw: string): E.Either<string, Trigger> => {
  const m = TRIGGER.exec(raw.trim());
  return m === null ? E.left(`${name}: expected <point>[@k] (e.g. write:ema.bin@2), got "${raw}"`) : E.right({ pattern: m[1]!, occurrence: m[2] === undefined ? 1 : Number(m[2]) });
};

/**
 * The plan the environment asks for; Left names the variable and its bad value.
 * @category parsing
 */
export const faultsFromEnv = (env: Readonly<Record<string, string | undefined>>): E.Either<string, FaultPlan> => {
  const plan: { enospc?: Trigger; pause?: { at: ReadonlyArray<Trigger>; signal: string }; nanStep?: number; infStep?: number } = {};
  const enospc = env['SCORE_SDE_FAULT_ENOSPC'];
  if (enospc !== undefined && enospc !== '') {
    const t = trigger('SCORE_SDE_FAULT_ENOSPC', enospc);
    if (E.isLeft(t)) return t;
    if (!t.right.pattern.startsWith('write:')) return E.left(`SCORE_SDE_FAULT_ENOSPC: only write: points can run out of space, got "${enospc}"`);
    plan.enospc = t.right;
  }
  const pause = env['SCORE_SDE_FAULT_PAUSE'];
  if (pause !== undefined && pause !== '') {
    const at = E.sequenceArray(pause.split(',').map((p) => trigger('SCORE_SDE_FAULT_PAUSE', p)));
    if (E.isLeft(at)) return at;
    const signal = env['SCORE_SDE_FAULT_SIGNAL'];
    if (signal === undefined || signal === '') return E.left('SCORE_SDE_FAULT_SIGNAL: required with SCORE_SDE_FAULT_PAUSE (the file the paused process writes and waits on)');
    plan.pause = { at: at.right, signal };
  }
  for (const [name, key] of [
    ['SCORE_SDE_FAULT_NAN_STEP', 'nanStep'],
    ['SCORE_SDE_FAULT_INF_STEP', 'infStep'],
  ] as const) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (!/^[1-9]\d*$/.test(raw.trim())) return E.left(`${name}: expected a step number ≥ 1, got "${raw}"`);
    plan[key] = Number(raw.trim());
  }
  return E.right(plan);
};

let cached: FaultPlan | undefined;
const arrivals = new Map<string, number>();

/** The process's plan (read once). A malformed variable throws here; commands check {@link faultsFromEnv} first. */
const plan = (): FaultPlan => {
  if (cached === undefined) {
    const p = faultsFromEnv(process.env);
    if (E.isLeft(p)) throw new Error(p.left);
    cached = p.right;
  }
  return cached;
};

/** Replaces the plan (tests of this module) and forgets every arrival count. @category parsing */
export const setFaultPlan = (p: FaultPlan | undefined): void => {
  cached = p;
  arrivals.clear();
};

// -------------------------------------------------------------------------------------
// points
// -------------------------------------------------------------------------------------

const matches = (pattern: string, point: string): boolean => (pattern.endsWith('*') ? point.startsWith(pattern.slice(0, -1)) : point === pattern);

/** Counts an arrival at `point` for a trigger; true on the arrival the trigger names. */
const fires = (kind: string, t: Trigger | undefined, point: string): boolean => {
  if (t === undefined || !matches(t.pattern, point)) return false;
  const key = `${kind}\u0000${t.pattern}`;
  const n = (arrivals.get(key) ?? 0) + 1;
  arrivals.set(key, n);
  return n === t.occurrence;
};

/** Whether a pause trigger fires at `point` (each trigger counts its own arrivals). */
const pausesAt = (p: FaultPlan, point: string): boolean => (p.pause?.at ?? []).map((t, i) => fires(`pause${i}`, t, point)).some((b) => b);

/** A Node-shaped "no space left on device" error, as `write(2)` on a full file system gives it. */
const enospcError = (point: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`ENOSPC: no space left on device, write (injected at ${point})`), { code: 'ENOSPC', errno: -28, syscall: 'write' });

const signalPaused = (file: string, point: string): void => {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${point}\n${process.pid}\n`);
  fs.renameSync(tmp, file);
};

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * An asynchronous point: pauses (without blocking the event loop) or fails as the plan says. Writers call it with
 * `write:<file name>`; the ENOSPC fault rejects with a Node-shaped error.
 * @category points
 */
export const point = async (name: string): Promise<void> => {
  const p = plan();
  if (fires('enospc', p.enospc, name)) throw enospcError(name);
  if (p.pause !== undefined && pausesAt(p, name)) {
    signalPaused(p.pause.signal, name);
    while (fs.existsSync(p.pause.signal)) await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

/**
 * A synchronous point (inside a training or sampling step): a pause blocks the thread, so signals sent meanwhile are
 * handled when it resumes, at the same place every time.
 * @category points
 */
export const pointSync = (name: string): void => {
  const p = plan();
  if (fires('enospc', p.enospc, name)) throw enospcError(name);
  if (p.pause !== undefined && pausesAt(p, name)) {
    signalPaused(p.pause.signal, name);
    while (fs.existsSync(p.pause.signal)) sleepSync(10);
  }
};

/** The value the batch of training step `s` (1-based) is to be multiplied by: NaN or +∞ when a fault asks, else undefined. @category points */
export const poisonAtStep = (s: number): number | undefined => (plan().nanStep === s ? Number.NaN : plan().infStep === s ? Number.POSITIVE_INFINITY : undefined);
