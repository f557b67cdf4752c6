import { Writable } from 'node:stream';
import { withProgress, etaMs, formatDuration, progressLine } from '../../src/lib/progress';

/** A stream that records what is written, and a clock the test moves by hand. */
const capture = () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  let t = 0;
  return { lines, stream, now: () => t, advance: (ms: number) => (t += ms) };
};

describe('withProgress (plain lines, no TTY)', () => {
  it('prints one line per 5% and a final line on stop: 100 ticks → 19 + 1 lines', () => {
    const c = capture();
    const p = withProgress('train', 100, { stream: c.stream, tty: false, now: c.now });
    for (let i = 0; i < 100; i++) {
      c.advance(10);
      p.tick(1, { loss: 1 / (i + 1) });
    }
    p.stop();
    expect(c.lines.length).toBe(20);
    expect(c.lines[0]).toBe('train   5% (5/100) 50ms elapsed, ETA 950ms  loss=0.2');
    expect(c.lines[19]).toBe('train 100% (100/100) 1.0s elapsed, done  loss=0.01');
  });

  it('prints at least every intervalMs when progress is slow', () => {
    const c = capture();
    const p = withProgress('sample', 1000, { stream: c.stream, tty: false, now: c.now, intervalMs: 10_000 });
    for (let i = 0; i < 20; i++) {
      c.advance(3000);
      p.tick();
    }
    // 20 ticks of 0.1% each never cross a 5% bucket; 60 s of clock at one line per ≥ 10 s → lines at 12, 24, 36, 48, 60 s.
    expect(c.lines.length).toBe(5);
    expect(c.lines[0]).toMatch(/^sample {3}0% \(4\/1000\) 12\.0s elapsed, ETA 49m 48s$/);
  });

  it('is silent when quiet', () => {
    const c = capture();
    const p = withProgress('x', 10, { stream: c.stream, quiet: true, now: c.now });
    p.tick(10);
    p.stop();
    expect(c.lines).toEqual([]);
  });

  it('stop is idempotent and ticks after stop are ignored', () => {
    const c = capture();
    const p = withProgress('x', 4, { stream: c.stream, tty: false, now: c.now });
    p.stop();
    p.stop();
    p.tick();
    expect(c.lines.length).toBe(1);
  });
});

describe('ETA and formatting', () => {
  it('ETA = elapsed · (total − done) / done', () => {
    expect(etaMs(2000, 25, 100)).toBe(6000);
    expect(Number.isNaN(etaMs(2000, 0, 100))).toBe(true);
    expect(etaMs(2000, 100, 100)).toBe(0);
  });

  it('formats durations for humans', () => {
    expect([formatDuration(850), formatDuration(12_345), formatDuration(245_000), formatDuration(7_380_000)]).toEqual(['850ms', '12.3s', '4m 05s', '2h 03m']);
    expect(progressLine('a', 1, 2, 1000, {})).toBe('a  50% (1/2) 1.0s elapsed, ETA 1.0s');
  });
});
