/**
 * Folder locks, so that two runs never write into (or read from under) the same folder at once, and a run folder a
 * failed command created is not left behind empty.
 *
 * A lock is the file `<folder>/.score-sde.lock`, created atomically with its content (written to a temporary file,
 * then hard-linked to the lock's name, which fails if the lock exists): the holder's pid, host, command, start time
 * and, on Linux, the process's start tick from /proc (so a recycled pid is not mistaken for the holder). A lock
 * whose holder is gone — a run killed with `kill -9`, a machine that rebooted — is stale and taken over: a lock never
 * stays stuck. A lock held by a live process is refused with a message naming it. The lock file is removed when the
 * run ends, whatever the exit (normal, error, Ctrl-C); only a kill leaves it, stale.
 *
 * @module lock
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The lock file's name inside a folder. @category model */
export const LOCK_FILE = '.score-sde.lock';

/** Who holds a lock (the lock file's content). @category model */
export const LockHolder = codec.strict(
  { pid: codec.PositiveInt, host: t.string, command: t.string, since: t.string, startTicks: t.union([codec.NonNegativeInt, t.null]) },
  'LockHolder',
);
export type LockHolder = t.TypeOf<typeof LockHolder>;

/** Why a folder could not be locked: another live run holds it, or the file system refused. @category model */
export type LockError =
  | { readonly _tag: 'Held'; readonly folder: string; readonly holder: LockHolder; readonly liveness: 'alive' | 'unknown' }
  | { readonly _tag: 'LockIO'; readonly folder: string; readonly message: string };

/** A held lock: `release()` removes the lock file (idempotent, synchronous: it also runs at process exit). @category model */
export interface Lock {
  readonly file: string;
  readonly release: () => void;
}

/** `--out /x is in use by pid 123 (experiments:mnist, since …, on host h); …`. @category model */
export const renderLockError = (e: LockError, what: string): string =>
  e._tag === 'LockIO'
    ? `${what} ${e.folder}: cannot lock it (${e.message})`
    : `${what} ${e.folder} is in use by another run: pid ${e.holder.pid} (${e.holder.command}, since ${e.holder.since}, on host ${e.holder.host}). ` +
      (e.liveness === 'alive'
        ? 'Wait for it to end or stop it; a run that was killed leaves a stale lock that the next run takes over by itself.'
        : `It runs on another host, whose processes cannot be checked from here: if it is gone, remove ${path.join(e.folder, LOCK_FILE)}.`);

// -------------------------------------------------------------------------------------
// processes
// -------------------------------------------------------------------------------------

/** The start time of a process in clock ticks since boot (Linux /proc/<pid>/stat field 22), or null elsewhere. */
const startTicks = (pid: number | 'self'): number | null => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isSafeInteger(v) ? v : null;
  } catch {
    return null;
  }
};

/** Whether the holder still runs: same host, its pid alive (signal 0), and the same start tick where /proc tells. */
const liveness = (h: LockHolder): 'alive' | 'dead' | 'unknown' => {
  if (h.host !== os.hostname()) return 'unknown';
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  if (h.startTicks === null) return 'alive';
  const now = startTicks(h.pid);
  return now === null || now === h.startTicks ? 'alive' : 'dead';
};

// -------------------------------------------------------------------------------------
// locking
// -------------------------------------------------------------------------------------

/** Lock files held by this process: a second claim of the same folder by the same run is a no-op. */
const held = new Set<string>();
const releaseAllAtExit = (): void => {
  for (const file of held) fs.rmSync(file, { force: true });
  held.clear();
};
let exitHookInstalled = false;

const readHolder = (file: string): E.Either<string, LockHolder> => {
  try {
    return E.mapLeft(() => 'unreadable')(codec.decodeJson(LockHolder)(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    return E.left((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unreadable');
  }
};

/** Creates the lock file with its content in one step (hard link of a complete temporary file); false if it exists. */
const createLock = (file: string, holder: LockHolder): boolean => {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, `${JSON.stringify(holder)}\n`, { flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
};

/**
 * Takes a stale lock away: renames it aside (atomic: of two runs taking over at once, one wins), checks that what
 * it took is the stale holder it judged (not a live lock made meanwhile; that one is put back) and deletes it.
 */
const takeOver = (file: string, stale: LockHolder): void => {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return; // somebody else took it over first
  }
  const taken = readHolder(aside);
  if (E.isRight(taken) && (taken.right.pid !== stale.pid || taken.right.since !== stale.since)) {
    try {
      fs.linkSync(aside, file);
    } catch {
      // A third run locked meanwhile: it holds the folder now, and ours is refused on the next attempt.
    }
  }
  fs.rmSync(aside, { force: true });
};

/**
 * Locks `folder` (which must exist) for this process on behalf of `command`. A stale lock is taken over; a lock of a
 * live process is refused (`Held`, with the holder). Locking a folder this process holds already succeeds, with a
 * release that does nothing (the first claim's release unlocks).
 * @category locking
 */
export const lockFolder = (folder: string, command: string): E.Either<LockError, Lock> => {
  const file = path.join(path.resolve(folder), LOCK_FILE);
  if (held.has(file)) return E.right({ file, release: () => undefined });
  const holder: LockHolder = { pid: process.pid, host: os.hostname(), command, since: new Date().toISOString(), startTicks: startTicks('self') };
  for (let attempt = 0; attempt < 5; attempt++) {
    let created: boolean;
    try {
      created = createLock(file, holder);
    } catch (e) {
      return E.left({ _tag: 'LockIO', folder, message: (e as Error).message });
    }
    if (created) {
      held.add(file);
      if (!exitHookInstalled) {
        process.on('exit', releaseAllAtExit);
        exitHookInstalled = true;
      }
      let released = false;
      return E.right({
        file,
        release: () => {
          if (released) return;
          released = true;
          held.delete(file);
          const now = readHolder(file);
          if (E.isRight(now) && now.right.pid === process.pid && now.right.since === holder.since) fs.rmSync(file, { force: true });
        },
      });
    }
    const other = readHolder(file);
    if (E.isLeft(other)) {
      // Gone meanwhile: try again. Unreadable: a lock this module did not write (or a damaged one) is stale only if
      // older than a minute; a younger one may be a writer of another tool between create and write.
      if (other.left === 'unreadable') {
        const age = Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0);
        if (age < 60_000) return E.left({ _tag: 'LockIO', folder, message: `${LOCK_FILE} exists but cannot be read; if no run uses this folder, remove it` });
        fs.rmSync(file, { force: true });
      }
      continue;
    }
    const state = liveness(other.right);
    if (state !== 'dead') return E.left({ _tag: 'Held', folder, holder: other.right, liveness: state });
    takeOver(file, other.right);
  }
  return E.left({ _tag: 'LockIO', folder, message: 'the lock changed hands five times while this run tried to take it' });
};

// -------------------------------------------------------------------------------------
// run folders
// -------------------------------------------------------------------------------------

/** An output folder claimed by a run: locked, and removed again at release if the run created it and left it empty. @category run folders */
export interface RunFolder {
  readonly folder: string;
  /** Unlocks; removes the folder if this run created it and nothing is in it. */
  readonly release: () => void;
}

/**
 * Creates `folder` if needed (remembering whether it did) and locks it. A failed command that wrote nothing thus
 * leaves no empty run folder behind; a run refused by the lock removes the folder it created.
 * @category run folders
 */
export const claimRunFolder = (folder: string, command: string): E.Either<LockError, RunFolder> => {
  const dir = path.resolve(folder);
  let created: boolean;
  try {
    created = !fs.existsSync(dir);
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    return E.left({ _tag: 'LockIO', folder: dir, message: (e as Error).message });
  }
  const removeIfEmpty = (): void => {
    if (!created) return;
    try {
      if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    } catch {
      // Best effort: a folder that cannot be listed or removed stays.
    }
  };
  const lock = lockFolder(dir, command);
  if (E.isLeft(lock)) {
    removeIfEmpty();
    return lock;
  }
  return E.right({
    folder: dir,
    release: () => {
      lock.right.release();
      removeIfEmpty();
    },
  });
};

/**
 * Locks a folder a run reads from (or writes a single stored directory into), so that no other run changes it
 * meanwhile. A folder that does not exist is not locked (reading it fails with its own message), nor is one this
 * process cannot write (a read-only copy no run can change).
 * @category run folders
 */
export const lockExistingFolder = (folder: string, command: string): E.Either<LockError, Lock | undefined> => {
  const dir = path.resolve(folder);
  if (!fs.existsSync(dir)) return E.right(undefined);
  const lock = lockFolder(dir, command);
  if (E.isLeft(lock) && lock.left._tag === 'LockIO' && /EACCES|EROFS|EPERM|ENOTDIR/.test(lock.left.message)) return E.right(undefined);
  return lock;
};

/**
 * Locks the folder a checkpoint lives in: the one a run reads (`--resume`, `--sample-only`, `--checkpoint`) or the one
 * `torch-import --out` writes, so that no other run replaces it meanwhile ({@link lockExistingFolder}).
 * @category run folders
 */
export const lockSourceFolder = (checkpoint: string, command: string): E.Either<LockError, Lock | undefined> =>
  lockExistingFolder(path.dirname(path.resolve(checkpoint)), command);

/** One lock a command needs: what it is for in messages (`--out`, `--resume: the folder of`) and how to take it. @category run folders */
export type Claim = readonly [what: string, take: () => E.Either<LockError, { readonly release: () => void } | undefined>];

/**
 * Takes the locks of a command in order. On the first refusal it releases those already taken (last first) and
 * gives the refusal with what it was for; otherwise it gives the release of them all (last first, so a run folder
 * is unlocked, and removed if it stayed empty, after the folders it read).
 * @category run folders
 */
export const holdAll = (claims: ReadonlyArray<Claim>): E.Either<{ readonly what: string; readonly error: LockError }, () => void> => {
  const taken: Array<{ readonly release: () => void }> = [];
  const releaseAll = (): void => {
    for (const l of taken.splice(0).reverse()) l.release();
  };
  for (const [what, take] of claims) {
    const r = take();
    if (E.isLeft(r)) {
      releaseAll();
      return E.left({ what, error: r.left });
    }
    if (r.right !== undefined) taken.push(r.right);
  }
  return E.right(releaseAll);
};
