/**
 * Folder locks: a live holder is refused and named; a dead one (killed, or its pid recycled) is taken over, so a
 * lock never stays stuck; a run folder a failed command created is removed again when it is empty.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import * as E from 'fp-ts/Either';
import { LOCK_FILE, claimRunFolder, lockFolder, lockSourceFolder, renderLockError, type LockHolder } from '../../src/lib/lock';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-test-'));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** Start tick of a process from /proc (Linux), as the lock records it. */
const ticksOf = (pid: number): number | null => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return null;
  }
};

const writeHolder = (folder: string, h: Partial<LockHolder> & { pid: number }): void => {
  const holder: LockHolder = { host: os.hostname(), command: 'experiments:mnist', since: '2025-01-01T00:00:00.000Z', startTicks: ticksOf(h.pid), ...h };
  fs.writeFileSync(path.join(folder, LOCK_FILE), JSON.stringify(holder));
};

/** The pid of a process that has exited (so it is dead, unless recycled within the test). */
const deadPid = (): number => Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);

test('a lock names this process; a second claim by the same process is a no-op; release removes the file', () => {
  const lock = lockFolder(root, 'test');
  if (E.isLeft(lock)) throw new Error(renderLockError(lock.left, 'folder'));
  const holder = JSON.parse(fs.readFileSync(path.join(root, LOCK_FILE), 'utf8')) as LockHolder;
  expect([holder.pid, holder.command, holder.host]).toEqual([process.pid, 'test', os.hostname()]);
  const again = lockFolder(root, 'test');
  expect(E.isRight(again)).toBe(true);
  if (E.isRight(again)) again.right.release();
  expect(fs.existsSync(path.join(root, LOCK_FILE))).toBe(true);
  lock.right.release();
  expect(fs.existsSync(path.join(root, LOCK_FILE))).toBe(false);
});

test('a lock held by a live process is refused, naming its pid, command and start', async () => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  try {
    writeHolder(root, { pid: child.pid! });
    const r = lockFolder(root, 'test');
    expect(E.isLeft(r) && r.left._tag).toBe('Held');
    if (E.isLeft(r)) expect(renderLockError(r.left, '--out')).toBe(
      `--out ${root} is in use by another run: pid ${child.pid} (experiments:mnist, since 2025-01-01T00:00:00.000Z, on host ${os.hostname()}). ` +
        'Wait for it to end or stop it; a run that was killed leaves a stale lock that the next run takes over by itself.',
    );
  } finally {
    child.kill('SIGKILL');
  }
});

test('a lock of a process that is gone is taken over', () => {
  writeHolder(root, { pid: deadPid(), startTicks: null });
  const r = lockFolder(root, 'test');
  expect(E.isRight(r)).toBe(true);
  if (E.isRight(r)) r.right.release();
});

test('a lock whose pid now belongs to another process (start tick differs) is taken over', () => {
  if (ticksOf(process.pid) === null) return; // no /proc: the start tick is not recorded, pid liveness alone decides
  writeHolder(root, { pid: process.ppid, startTicks: (ticksOf(process.ppid) ?? 0) + 1 });
  const r = lockFolder(root, 'test');
  expect(E.isRight(r)).toBe(true);
  if (E.isRight(r)) r.right.release();
});

test('a lock from another host cannot be checked: refused, and the message says how to remove it', () => {
  writeHolder(root, { pid: 1, host: 'elsewhere.example' });
  const r = lockFolder(root, 'test');
  expect(E.isLeft(r) && r.left._tag === 'Held' && r.left.liveness).toBe('unknown');
  if (E.isLeft(r)) expect(renderLockError(r.left, '--out')).toMatch(new RegExp(`on host elsewhere\\.example\\)\\. It runs on another host.*remove ${path.join(root, LOCK_FILE).replace(/[.]/g, '\\.')}`));
});

test('an unreadable lock file is refused while young (another tool may be writing it) and taken over when old', () => {
  fs.writeFileSync(path.join(root, LOCK_FILE), 'not json');
  const young = lockFolder(root, 'test');
  expect(E.isLeft(young) && young.left._tag).toBe('LockIO');
  const old = new Date(Date.now() - 120_000);
  fs.utimesSync(path.join(root, LOCK_FILE), old, old);
  const r = lockFolder(root, 'test');
  expect(E.isRight(r)).toBe(true);
  if (E.isRight(r)) r.right.release();
});

test('a run folder the run created is removed at release when empty, kept when it holds anything; an existing one is never removed', () => {
  const fresh = path.join(root, 'a', 'run');
  const c = claimRunFolder(fresh, 'test');
  if (E.isLeft(c)) throw new Error('not claimed');
  expect(fs.readdirSync(fresh)).toEqual([LOCK_FILE]);
  c.right.release();
  expect(fs.existsSync(fresh)).toBe(false);

  const kept = claimRunFolder(fresh, 'test');
  if (E.isLeft(kept)) throw new Error('not claimed');
  fs.writeFileSync(path.join(fresh, 'report.json'), '{}');
  kept.right.release();
  expect(fs.readdirSync(fresh)).toEqual(['report.json']);

  const existing = path.join(root, 'existing');
  fs.mkdirSync(existing);
  const e = claimRunFolder(existing, 'test');
  if (E.isLeft(e)) throw new Error('not claimed');
  e.right.release();
  expect(fs.existsSync(existing)).toBe(true);
});

test('a refused claim leaves the live holder\'s lock alone; the folder of a missing checkpoint is not locked', () => {
  const busy = path.join(root, 'busy');
  fs.mkdirSync(busy);
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
  try {
    writeHolder(busy, { pid: child.pid! });
    expect(E.isLeft(claimRunFolder(busy, 'test'))).toBe(true);
    expect(fs.existsSync(path.join(busy, LOCK_FILE))).toBe(true);
  } finally {
    child.kill('SIGKILL');
  }
  expect(lockSourceFolder(path.join(root, 'nowhere', 'checkpoint'), 'test')).toEqual(E.right(undefined));
});
