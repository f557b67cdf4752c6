import * as fs from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import {
  float32Bytes,
  float32FromBytes,
  sha256Hex,
  splitBySpecs,
  checkTensorLayout,
  writeDirectoryAtomically,
  readManifest,
  storedDirectory,
  holdsManifest,
  type FileEntry,
} from '../src/tensor-files';
import { setFaultPlan } from '../src/faults';
import type { ParamSpec } from '../src/params';
import { runs } from '@score-sde/tensor-fp/testing';

const spec = (name: string, shape: number[]): ParamSpec => ({ name, shape, init: { kind: 'zeros' }, trainable: true });

describe('tensor files', () => {
  test('float32FromBytes ∘ float32Bytes = concatenation (every float32, NaN payloads and −0 included, bit for bit)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 20 }), { maxLength: 5 }), (words) => {
        const parts = words.map((w) => new Float32Array(Uint32Array.from(w).buffer));
        const back = float32FromBytes(float32Bytes(parts));
        const expected = Uint32Array.from(words.flat());
        expect(Array.from(new Uint32Array(back.buffer))).toEqual(Array.from(expected));
      }),
      runs(100),
    );
  });

  test('the bytes are little-endian float32: 1.0 is 00 00 80 3f', () => {
    expect(Array.from(float32Bytes([Float32Array.of(1)]))).toEqual([0, 0, 0x80, 0x3f]);
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  test('splitBySpecs cuts consecutive slices sized by the shapes', () => {
    const parts = splitBySpecs(Float32Array.from([1, 2, 3, 4, 5, 6, 7]), [spec('a', [2, 2]), spec('b', [3])]);
    expect(Array.from(parts['a']!)).toEqual([1, 2, 3, 4]);
    expect(Array.from(parts['b']!)).toEqual([5, 6, 7]);
  });

  test('checkTensorLayout: same names, shapes and order, and 4·Σ|shape| bytes; otherwise says what differs', () => {
    const want = [spec('w', [2, 3]), spec('b', [3])];
    const entry = (tensors: FileEntry['tensors'], bytes: number): FileEntry => ({ bytes, sha256: '0'.repeat(64), tensors });
    expect(E.isRight(checkTensorLayout(want, entry([{ name: 'w', shape: [2, 3] }, { name: 'b', shape: [3] }], 36)))).toBe(true);
    const swapped = checkTensorLayout(want, entry([{ name: 'b', shape: [3] }, { name: 'w', shape: [2, 3] }], 36));
    expect(E.isLeft(swapped) && swapped.left).toEqual({ field: 'tensors', message: 'tensor 0 is b [3], the config needs w [2, 3]' });
    const short = checkTensorLayout(want, entry([{ name: 'w', shape: [2, 3] }], 24));
    expect(E.isLeft(short) && short.left.message).toBe('manifest lists 1 tensors, the config has 2');
    const bytes = checkTensorLayout(want, entry([{ name: 'w', shape: [2, 3] }, { name: 'b', shape: [3] }], 40));
    expect(E.isLeft(bytes) && bytes.left).toEqual({ field: 'bytes', message: '40, but its tensors need 36 bytes of float32' });
  });
});

describe('stored directories: CURRENT names a complete version, replaced atomically', () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'stored-'));
  });
  afterEach(async () => {
    setFaultPlan(undefined);
    await fs.rm(root, { recursive: true, force: true });
  });
  const Manifest = t.type({ value: t.number });
  const files = (v: number): ReadonlyArray<readonly [string, string]> => [
    ['data.bin', `payload ${v}`],
    ['manifest.json', JSON.stringify({ value: v })],
  ];
  const valueOf = async (dir: string): Promise<number | string> => {
    const m = await readManifest(dir, Manifest);
    if (E.isLeft(m)) return m.left._tag;
    const at = await storedDirectory(dir);
    const data = E.isRight(at) ? await fs.readFile(path.join(at.right, 'data.bin'), 'utf8') : '';
    return data === `payload ${m.right.value}` ? m.right.value : `torn: ${data}`;
  };

  test('a write leaves CURRENT and one version; the next replaces it and removes the old version', async () => {
    const dir = path.join(root, 'store');
    expect(E.isRight(await writeDirectoryAtomically(dir, files(1), 'step-1'))).toBe(true);
    expect(await valueOf(dir)).toBe(1);
    expect(E.isRight(await writeDirectoryAtomically(dir, files(2), 'step-2'))).toBe(true);
    expect(await valueOf(dir)).toBe(2);
    expect((await fs.readdir(dir)).sort()).toEqual(['CURRENT', expect.stringMatching(/^step-2\.[0-9a-f]{8}$/)]);
  });

  /**
   * Writes `v` into `dir`, pausing at `pointer:<dir>` (the new version complete, CURRENT not yet replaced) and at
   * `cleanup:<dir>` (CURRENT replaced, old files not yet removed), and returns the value read at each pause.
   */
  const valuesAtPauses = async (dir: string, v: number): Promise<ReadonlyArray<number | string>> => {
    const signal = path.join(root, 'signal');
    const base = path.basename(dir);
    setFaultPlan({ pause: { at: [{ pattern: `pointer:${base}`, occurrence: 1 }, { pattern: `cleanup:${base}`, occurrence: 1 }], signal } });
    const seen: Array<number | string> = [];
    const writing = writeDirectoryAtomically(dir, files(v));
    for (let i = 0; i < 2; i++) {
      while (!existsSync(signal)) await new Promise((r) => setTimeout(r, 2));
      seen.push(await valueOf(dir));
      rmSync(signal);
    }
    expect(E.isRight(await writing)).toBe(true);
    return seen;
  };

  test('at the moments before and after CURRENT is replaced, the directory holds the old value, then the new one', async () => {
    const dir = path.join(root, 'store');
    await writeDirectoryAtomically(dir, files(1), 'step-1');
    expect(await valuesAtPauses(dir, 2)).toEqual([1, 2]);
    expect(await valueOf(dir)).toBe(2);
  });

  test('a flat directory of the older layout loads, and is replaced without a moment of nothing: old value, then new, its files removed last', async () => {
    const dir = path.join(root, 'flat');
    await fs.mkdir(dir);
    for (const [n, d] of files(7)) await fs.writeFile(path.join(dir, n), d);
    expect(await valueOf(dir)).toBe(7);
    expect(await holdsManifest(dir)).toBe(true);
    expect(await valuesAtPauses(dir, 8)).toEqual([7, 8]);
    expect(await valueOf(dir)).toBe(8);
    expect((await fs.readdir(dir)).sort()).toEqual(['CURRENT', expect.stringMatching(/^v\.[0-9a-f]{8}$/)]);
  });

  test.each(['write:data.bin', 'write:manifest.json', 'write:CURRENT'])(
    'a full disk at %s leaves the old value loadable and none of the new files',
    async (at) => {
      const dir = path.join(root, 'store');
      await writeDirectoryAtomically(dir, files(1), 'step-1');
      const before = (await fs.readdir(dir)).sort();
      setFaultPlan({ enospc: { pattern: at, occurrence: 1 } });
      const r = await writeDirectoryAtomically(dir, files(2), 'step-2');
      expect(E.isLeft(r) && r.left).toEqual({ _tag: 'IO', code: 'ENOSPC', message: expect.stringMatching(/^ENOSPC: no space left on device/) });
      expect(await valueOf(dir)).toBe(1);
      expect((await fs.readdir(dir)).sort()).toEqual(before);
    },
  );

  test('a full disk at the first write of a new directory leaves no directory behind', async () => {
    const dir = path.join(root, 'fresh');
    setFaultPlan({ enospc: { pattern: 'write:manifest.json', occurrence: 1 } });
    expect(E.isLeft(await writeDirectoryAtomically(dir, files(1)))).toBe(true);
    expect(await fs.readdir(root)).toEqual([]);
  });

  test("a killed writer's leftovers (a half version, a CURRENT temp) neither change the value nor block the next write, which removes them", async () => {
    const dir = path.join(root, 'store');
    await writeDirectoryAtomically(dir, files(1), 'step-1');
    await fs.mkdir(path.join(dir, '.step-2.0badc0de.tmp'));
    await fs.writeFile(path.join(dir, '.step-2.0badc0de.tmp', 'data.bin'), 'half');
    await fs.writeFile(path.join(dir, '.CURRENT.tmp-123-0badc0de'), 'step-2.0badc0de\n');
    expect(await valueOf(dir)).toBe(1);
    expect(E.isRight(await writeDirectoryAtomically(dir, files(3), 'step-3'))).toBe(true);
    expect(await valueOf(dir)).toBe(3);
    expect((await fs.readdir(dir)).length).toBe(2);
    // A directory holding nothing but such leftovers (a first save killed before its CURRENT) may be written.
    const fresh = path.join(root, 'fresh');
    await fs.mkdir(path.join(fresh, '.v.12345678.tmp'), { recursive: true });
    expect(await valueOf(fresh)).toBe('MissingFile');
    expect(E.isRight(await writeDirectoryAtomically(fresh, files(4)))).toBe(true);
    expect(await valueOf(fresh)).toBe(4);
  });

  test('a CURRENT that names no version is an error naming CURRENT, not a silent fallback', async () => {
    const dir = path.join(root, 'store');
    await writeDirectoryAtomically(dir, files(1));
    await fs.writeFile(path.join(dir, 'CURRENT'), '../../etc\n');
    const m = await readManifest(dir, Manifest);
    expect(E.isLeft(m) && m.left).toEqual({ _tag: 'IOError', dir, message: expect.stringMatching(/^CURRENT names no version directory/) });
  });
});
