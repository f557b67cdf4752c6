/**
 * What both pages share: elements by id, the backend chosen for this page (`?backend=webgpu|webgl|wasm|cpu`, else the
 * first that works) and shown in the header, and the record a page publishes of its state (`window.scoreSde`), which
 * the browser tests and the benchmark read.
 *
 * @module web/host
 */
import * as E from 'fp-ts/Either';
import { type BackendInfo, type BrowserBackendName, chooseBrowserBackend, describeBackend, parseBrowserBackend } from '@score-sde/tensor-fp';

/** The element with this id (a page's markup and its script go together: a missing one is a bug). @category elements */
export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e as T;
};

/** The site's root URL (the folder of this page). */
const siteUrl = (file: string): string => new URL(file, new URL('.', location.href)).href;

/** Fetches a file of the site as bytes (Left: what failed, naming the file). @category loading */
export const fetchBytes = async (file: string): Promise<Uint8Array> => {
  const r = await fetch(siteUrl(file));
  if (!r.ok) throw new Error(`${file}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};

/**
 * Chooses the page's backend: the `backend` query parameter, else webgpu → webgl → wasm → cpu; the wasm backend's
 * binaries and the fused kernels come from the site's `wasm/` folder, its threads from `threads` (default: the
 * browser's logical cores, on a cross-origin isolated page). Shows `backend: …` in #backend (with why the
 * backends before it were skipped, as its title). Left: the message, also shown.
 * @category backend
 */
export const startBackend = async (): Promise<E.Either<string, BackendInfo<BrowserBackendName>>> => {
  const el = byId('backend');
  const params = new URLSearchParams(location.search);
  const want = parseBrowserBackend(params.get('backend'));
  const threads = Number(params.get('threads') ?? NaN);
  const r = E.isLeft(want)
    ? want
    : await chooseBrowserBackend(want.right, {
        wasmPaths: siteUrl('wasm/'),
        fusedKernels: (shared) => fetchBytes(shared ? 'wasm/fused-kernels-shared.wasm' : 'wasm/fused-kernels.wasm'),
        ...(Number.isSafeInteger(threads) && threads >= 1 ? { threads } : {}),
      });
  if (E.isLeft(r)) {
    el.textContent = `backend: ${r.left.message}`;
    el.classList.add('errors');
    publish({ backend: undefined, backendError: r.left.message });
    return E.left(r.left.message);
  }
  el.textContent = `backend: ${describeBackend(r.right)}`;
  el.title = (r.right.skipped ?? []).join('\n');
  publish({ backend: describeBackend(r.right), backendSkipped: r.right.skipped ?? [] });
  return E.right(r.right);
};

/** The published state of a page (`window.scoreSde`). @category state */
export type Published = Record<string, unknown>;

/** Merges `fields` into `window.scoreSde`. @category state */
export const publish = (fields: Published): void => {
  const w = window as unknown as { scoreSde?: Published };
  w.scoreSde = { ...(w.scoreSde ?? {}), ...fields };
};

/** A duration in ms as seconds with 2 decimals. @category display */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
