/**
 * Serving the static site locally (`experiments:web -- --serve`, and the web tests): the files of one folder over HTTP
 * on loopback, GET and HEAD only, with the headers that make the page cross-origin isolated (COOP same-origin, COEP
 * require-corp), so the wasm backend may use threads (SharedArrayBuffer). Any other static host serves the same files;
 * without these headers the page runs single-threaded.
 *
 * @module site/serve
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';

/** Content types by extension (anything else, e.g. a checkpoint's CURRENT or .bin files, is served as bytes). @category serving */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The headers of every response: cross-origin isolation, and no caching (a rebuilt site is seen at once). @category serving */
export const SITE_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
};

/** A running server: its base URL and how to stop it. @category serving */
export interface SiteServer {
  readonly url: string;
  readonly close: () => Promise<void>;
}

/** The file a request path names inside `root`, or undefined when it leaves `root`; a folder means its index.html. */
export const fileOfRequest = (root: string, urlPath: string): string | undefined => {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split('?')[0]!.split('#')[0]!);
  } catch {
    return undefined;
  }
  const file = path.resolve(root, `.${path.posix.normalize(`/${decoded}`)}`);
  if (file !== root && !file.startsWith(root + path.sep)) return undefined;
  return decoded.endsWith('/') ? path.join(file, 'index.html') : file;
};

/**
 * Serves the folder `dir` at http://host:port/ (port 0: any free port) until closed. 404 for what is not a file in
 * the folder, 405 for methods other than GET and HEAD.
 * @category serving
 */
export const serveSite = (dir: string, o: { readonly port: number; readonly host: string }): Promise<SiteServer> => {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    const send = (status: number, body: string | Buffer, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { ...SITE_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    const file = fileOfRequest(root, req.url ?? '/');
    if (file === undefined) return send(404, 'not found');
    fs.readFile(file, (err, data) => (err !== null ? send(404, 'not found') : send(200, data, CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream')));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      const a = server.address() as AddressInfo;
      resolve({
        url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
};
