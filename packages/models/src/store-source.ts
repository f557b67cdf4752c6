/**
 * Where a stored directory is read from. The reading of every kind of weights (stored-format.ts, weights-load.ts) sees
 * only this record, so a checkpoint loads the same way — the same layout, manifest codec, checksums and messages —
 * from a Node directory (tensor-files.ts, `fsSource`), from a URL ({@link urlSource}: a static site's folder) and from
 * the files of a folder a browser's file picker gave ({@link filesSource}).
 *
 * A missing file is a problem with code `ENOENT`, as Node's file system says it, so the layout's rules (no CURRENT
 * means the flat layout, a missing file is named) read the same on every source. Runs on any host.
 *
 * @module store-source
 */
import * as E from 'fp-ts/Either';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A read failure: Node's error code where there is one (`ENOENT`: no such file), and a message. @category model */
export interface FsProblem {
  readonly code: string | undefined;
  readonly message: string;
}

/**
 * A stored directory to read: how messages name it (`dir`), whether it is a directory at all, its files by path
 * relative to it (`CURRENT`, `step-8.0a1b2c3d/manifest.json`), and the sha256 of bytes (lowercase hex).
 * @category model
 */
export interface StoreSource {
  readonly dir: string;
  readonly isDirectory: () => Promise<E.Either<FsProblem, boolean>>;
  readonly readText: (file: string) => Promise<E.Either<FsProblem, string>>;
  readonly readBytes: (file: string) => Promise<E.Either<FsProblem, Uint8Array>>;
  readonly sha256: (bytes: Uint8Array) => Promise<string>;
}

// -------------------------------------------------------------------------------------
// sha256
// -------------------------------------------------------------------------------------

/** SHA-256's round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = Uint32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74,
  0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d,
  0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e,
  0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
  0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/**
 * SHA-256 (FIPS 180-4) in plain JavaScript, lowercase hex: the message padded with 0x80, zeros and its bit length
 * (64-bit big-endian) to whole 64-byte blocks; per block the schedule W_t = σ₁(W_{t−2}) + W_{t−7} + σ₀(W_{t−15}) +
 * W_{t−16} and 64 rounds of T₁ = h + Σ₁(e) + Ch(e, f, g) + K_t + W_t, T₂ = Σ₀(a) + Maj(a, b, c). For hosts without
 * WebCrypto (a page served over plain http from another machine).
 * @category sha256
 */
export const sha256HexJs = (bytes: Uint8Array): string => {
  const n = bytes.length;
  const blocks = Math.ceil((n + 9) / 64);
  const m = new Uint8Array(blocks * 64);
  m.set(bytes);
  m[n] = 0x80;
  const view = new DataView(m.buffer);
  view.setUint32(m.length - 8, Math.floor(n / 0x20000000), false);
  view.setUint32(m.length - 4, (n * 8) >>> 0, false);
  const h = Uint32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  for (let b = 0; b < blocks; b++) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(b * 64 + 4 * t, false);
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
      const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) >>> 0;
    }
    let [a, bb, c, d, e, f, g, hh] = [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!];
    for (let t = 0; t < 64; t++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t]! + w[t]!) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c))) >>> 0;
      [hh, g, f, e, d, c, bb, a] = [g, f, e, (d + t1) >>> 0, c, bb, a, (t1 + t2) >>> 0];
    }
    [a, bb, c, d, e, f, g, hh].forEach((v, i) => (h[i] = (h[i]! + v) >>> 0));
  }
  return Array.from(h, (v) => v.toString(16).padStart(8, '0')).join('');
};

interface Subtle {
  digest(algorithm: string, data: Uint8Array): Promise<ArrayBuffer>;
}

/** SHA-256 of bytes, lowercase hex: WebCrypto's where the host has it (a secure context, Node), else {@link sha256HexJs}. @category sha256 */
export const sha256HexAsync = async (bytes: Uint8Array): Promise<string> => {
  const subtle = (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle;
  if (subtle === undefined) return sha256HexJs(bytes);
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (v) => v.toString(16).padStart(2, '0')).join('');
};

// -------------------------------------------------------------------------------------
// sources
// -------------------------------------------------------------------------------------

/** The response a source needs of `fetch`. */
interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** `fetch` as a source uses it. @category sources */
export type Fetch = (url: string) => Promise<FetchResponse>;

/**
 * A stored directory at a URL (a folder of a static site): file f is `<url>/f`; HTTP 404 reads as a missing file
 * (`ENOENT`), any other failure as a read error naming the URL. A URL cannot be listed, so `isDirectory` is taken on
 * trust (a missing folder shows as its missing manifest.json). Messages name the URL as given.
 * @category sources
 */
export const urlSource = (url: string, fetchFn: Fetch = (u) => (globalThis as unknown as { fetch: Fetch }).fetch(u)): StoreSource => {
  const base = url.replace(/\/+$/, '');
  const get = async <A>(file: string, body: (r: FetchResponse) => Promise<A>): Promise<E.Either<FsProblem, A>> => {
    const at = `${base}/${file}`;
    try {
      const r = await fetchFn(at);
      if (r.status === 404) return E.left({ code: 'ENOENT', message: `${at}: not found (HTTP 404)` });
      if (!r.ok) return E.left({ code: undefined, message: `${at}: HTTP ${r.status}` });
      return E.right(await body(r));
    } catch (e) {
      return E.left({ code: undefined, message: `${at}: ${(e as Error).message}` });
    }
  };
  return {
    dir: url,
    isDirectory: async () => E.right(true),
    readText: (file) => get(file, (r) => r.text()),
    readBytes: (file) => get(file, async (r) => new Uint8Array(await r.arrayBuffer())),
    sha256: sha256HexAsync,
  };
};

/** A file a browser's folder picker gives: its path from the picked folder's parent (`ckpt/CURRENT`), and its bytes. @category sources */
export interface PickedFile {
  readonly webkitRelativePath: string;
  readonly name: string;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * The files of one folder a browser's picker gave (`<input type="file" webkitdirectory>`): the folder is named by
 * the first segment of their paths, and file f of the stored directory is the picked file `<folder>/f`. Left when
 * the files are not all under one folder.
 * @category sources
 */
export const filesSource = (files: ReadonlyArray<PickedFile>): E.Either<string, StoreSource> => {
  const paths = files.map((f) => (f.webkitRelativePath === '' ? f.name : f.webkitRelativePath));
  const roots = [...new Set(paths.map((p) => p.split('/')[0]!))];
  if (roots.length !== 1 || paths.some((p) => !p.includes('/'))) return E.left(`expected the files of one folder, got ${roots.length === 0 ? 'none' : paths.slice(0, 3).join(', ')}`);
  const root = roots[0]!;
  const byPath = new Map(files.map((f, i) => [paths[i]!.slice(root.length + 1), f] as const));
  const read = async <A>(file: string, decode: (b: ArrayBuffer) => A): Promise<E.Either<FsProblem, A>> => {
    const f = byPath.get(file);
    if (f === undefined) return E.left({ code: 'ENOENT', message: `${root}/${file}: no such file` });
    try {
      return E.right(decode(await f.arrayBuffer()));
    } catch (e) {
      return E.left({ code: undefined, message: `${root}/${file}: ${(e as Error).message}` });
    }
  };
  return E.right({
    dir: root,
    isDirectory: async () => E.right(true),
    readText: (file) => read(file, (b) => new TextDecoder().decode(b)),
    readBytes: (file) => read(file, (b) => new Uint8Array(b)),
    sha256: sha256HexAsync,
  });
};
