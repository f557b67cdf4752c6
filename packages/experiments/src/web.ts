/**
 * `npx nx run experiments:web [-- --serve] [--checkpoint runs/a/checkpoint]`: builds the static site of the sampler
 * playground and the digits page (site/build.ts) into `--out`; `--serve` then serves it on loopback until Ctrl-C
 * (site/serve.ts: cross-origin isolated, so the wasm backend may use threads). `--checkpoint` bundles checkpoints
 * into the site, which the digits page offers by URL (a trained model shared with no install at all).
 *
 * @module web
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { cli, command } from './lib';
import { type BundledCheckpoint, buildSite } from './site/build';
import { serveSite } from './site/serve';

/** The flags of the web command. @category command line */
export const webFlags = {
  out: cli.stringFlag({ default: path.join('packages', 'experiments', 'out', 'web'), description: 'the folder the site is built into (replaced on each build)' }),
  serve: cli.booleanFlag({ description: 'serve the site on loopback after building it, until Ctrl-C' }),
  port: cli.numberFlag(codec.NonNegativeInt, { default: 8080, description: 'port of --serve (0: any free port)' }),
  host: cli.stringFlag({ default: '127.0.0.1', description: 'address --serve listens on' }),
  checkpoint: cli.listFlag(t.string, {
    default: [],
    description: 'checkpoint directories to bundle into the site, comma-separated, each [name=]dir (name: the dir\'s name, or its parent\'s for …/checkpoint); the digits page offers them by URL',
  }),
} as const;

const USAGE = 'npx nx run experiments:web [-- --serve] [--out DIR] [--checkpoint [name=]DIR,…]';

/** The help's description. @category command line */
export const WEB_DESCRIPTION =
  'Builds the static web site: a sampler playground (compose a sampler as JSON and watch it move samples over an exact density) and a digits page (load a checkpoint, draw digits step by step), both on the same packages as the commands.';

/** A `--checkpoint` item: `name=dir`, or a dir named after itself (or after its parent when it is called checkpoint). @category command line */
export const bundledCheckpoint = (item: string): BundledCheckpoint => {
  const eq = item.indexOf('=');
  if (eq > 0) return { name: item.slice(0, eq), dir: item.slice(eq + 1) };
  const dir = path.resolve(item);
  return { name: path.basename(dir) === 'checkpoint' ? path.basename(path.dirname(dir)) : path.basename(dir), dir: item };
};

/** Resolves when the process gets SIGINT or SIGTERM. */
const interrupted = (): Promise<void> =>
  new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });

/**
 * The command: build, report the files, and with `--serve` serve until Ctrl-C. Returns the exit code (lib/command):
 * 0 done, 1 the build or the server failed, 2 bad flags.
 * @category command line
 */
export const webMain = async (argv: ReadonlyArray<string>, io: command.CommandIO = command.processIO): Promise<number> => {
  const parsed = command.parseCommandFlags(webFlags, argv, { usage: USAGE, description: WEB_DESCRIPTION }, io);
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const built = await buildSite({ out: flags.out, checkpoints: flags.checkpoint.map(bundledCheckpoint) });
  if (E.isLeft(built)) {
    io.err(`web: ${built.left}`);
    return command.EXIT.failed;
  }
  const total = built.right.files.reduce((a, f) => a + f.bytes, 0);
  io.err(`web: built ${built.right.files.length} files (${(total / 1e6).toFixed(1)} MB) into ${built.right.out}`);
  built.right.warnings.forEach((w) => io.err(`web: warning: ${w}`));
  if (!flags.serve) {
    io.err('web: serve it with --serve, or copy the folder to any static host');
    return command.EXIT.ok;
  }
  const server = await serveSite(built.right.out, { port: flags.port, host: flags.host }).then(E.right, (e: unknown) => E.left((e as Error).message));
  if (E.isLeft(server)) {
    io.err(`web: --serve: cannot listen on ${flags.host}:${flags.port}: ${server.left}`);
    return command.EXIT.failed;
  }
  io.err(`web: serving ${server.right.url}playground.html and ${server.right.url}digits.html (Ctrl-C stops)`);
  await interrupted();
  await server.right.close();
  return command.EXIT.ok;
};

if (require.main === module) command.runMain('web', (argv) => webMain(argv));
