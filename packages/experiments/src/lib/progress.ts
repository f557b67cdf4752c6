/**
 * Progress bars with an ETA. On a terminal, a redrawn cli-progress bar; elsewhere (CI logs, pipes, files)
 * plain lines, one each time another 5% is done or every 10 s, so logs stay short and readable; nothing at
 * all when quiet.
 *
 *   ETA = elapsed · (total − done) / done
 *
 * @module progress
 */
import { SingleBar } from 'cli-progress';
import { formatNumber } from './report';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** Extra fields shown after the bar, e.g. `{ loss: 0.123 }` → `loss=0.123`. @category model */
export type ProgressExtra = Readonly<Record<string, string | number>>;

/** A running progress display. @category model */
export interface Progress {
  /** Advance by n (default 1) and optionally update the extra fields. */
  readonly tick: (n?: number, extra?: ProgressExtra) => void;
  /** Finish: the terminal bar is closed, the plain mode prints a final line with the elapsed time. */
  readonly stop: () => void;
}

/** Where and how to show progress. @category model */
export interface ProgressOptions {
  /** No output at all. */
  readonly quiet?: boolean;
  /** Output stream, default process.stderr. */
  readonly stream?: NodeJS.WritableStream & { readonly isTTY?: boolean };
  /** Force the terminal bar (true) or the plain lines (false); default: the stream's isTTY and not CI. */
  readonly tty?: boolean;
  /** Plain mode: print when another `percentStep`% is done (default 5) … */
  readonly percentStep?: number;
  /** … or when this many ms passed since the last line (default 10 000). */
  readonly intervalMs?: number;
  /** Clock in ms (for tests), default Date.now. */
  readonly now?: () => number;
}

// -------------------------------------------------------------------------------------
// pure helpers
// -------------------------------------------------------------------------------------

/** A duration for humans: `850ms`, `12.3s`, `4m 05s`, `2h 03m`. @category formatting */
export const formatDuration = (ms: number): string => {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
};

/** Remaining time estimate: elapsed · (total − done) / done (NaN before the first unit is done). @category formatting */
export const etaMs = (elapsedMs: number, done: number, total: number): number => (done <= 0 ? NaN : (elapsedMs * Math.max(0, total - done)) / done);

/** `loss=0.1234 lr=1e-4`. @category formatting */
export const formatExtra = (extra: ProgressExtra): string =>
  Object.entries(extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
    .join(' ');

/** One plain progress line: `label  45% (450/1000) 12.3s elapsed, ETA 15.0s  loss=0.12`. @category formatting */
export const progressLine = (label: string, done: number, total: number, elapsedMs: number, extra: ProgressExtra): string => {
  const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
  const eta = done >= total ? 'done' : `ETA ${formatDuration(etaMs(elapsedMs, done, total))}`;
  const ex = formatExtra(extra);
  return `${label} ${String(pct).padStart(3)}% (${done}/${total}) ${formatDuration(elapsedMs)} elapsed, ${eta}${ex === '' ? '' : `  ${ex}`}`;
};

const isCI = (): boolean => {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
};

// -------------------------------------------------------------------------------------
// displays
// -------------------------------------------------------------------------------------

const silent: Progress = { tick: () => undefined, stop: () => undefined };

/** Plain lines for logs: one per `percentStep`% or per `intervalMs`, and a last one on stop. */
const plainProgress = (label: string, total: number, opts: ProgressOptions): Progress => {
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? Date.now;
  const step = opts.percentStep ?? 5;
  const interval = opts.intervalMs ?? 10_000;
  const start = now();
  let done = 0;
  let extra: ProgressExtra = {};
  let lastBucket = 0;
  let lastTime = start;
  let stopped = false;
  const print = (): void => {
    stream.write(`${progressLine(label, done, total, now() - start, extra)}\n`);
  };
  return {
    tick: (n = 1, ex) => {
      if (stopped) return;
      done = Math.min(total, done + n);
      if (ex !== undefined) extra = ex;
      const bucket = total > 0 ? Math.floor((100 * done) / total / step) : 0;
      const t = now();
      if (done < total && (bucket > lastBucket || t - lastTime >= interval)) {
        lastBucket = bucket;
        lastTime = t;
        print();
      }
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      print();
    },
  };
};

/** The redrawn terminal bar. */
const ttyProgress = (label: string, total: number, opts: ProgressOptions): Progress => {
  const bar = new SingleBar({
    stream: opts.stream ?? process.stderr,
    format: `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted} elapsed, ETA {eta_formatted} {extra}`,
    barsize: 30,
    hideCursor: true,
    etaBuffer: 50,
    fps: 5,
  });
  bar.start(Math.max(total, 1), 0, { extra: '' });
  let done = 0;
  let stopped = false;
  return {
    tick: (n = 1, extra) => {
      if (stopped) return;
      done = Math.min(total, done + n);
      bar.update(done, extra === undefined ? undefined : { extra: formatExtra(extra) });
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
};

/**
 * A progress display for `total` units of work labelled `label`: a terminal bar when the stream is a TTY (and
 * not CI), plain lines otherwise, nothing when quiet. Call `tick` as work is done and `stop` at the end (also
 * on failure, e.g. in `finally`).
 * @category displays
 */
export const withProgress = (label: string, total: number, opts: ProgressOptions = {}): Progress => {
  if (opts.quiet === true) return silent;
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? (stream.isTTY === true && !isCI());
  return tty ? ttyProgress(label, total, { ...opts, stream }) : plainProgress(label, total, { ...opts, stream });
};

/**
 * Runs `f` with a progress display and stops the display whatever happens.
 * @category displays
 */
export const trackProgress = async <A>(label: string, total: number, opts: ProgressOptions, f: (p: Progress) => Promise<A>): Promise<A> => {
  const p = withProgress(label, total, opts);
  try {
    return await f(p);
  } finally {
    p.stop();
  }
};
