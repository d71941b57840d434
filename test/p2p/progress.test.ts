// The sync progress line: rewritten in place on a terminal, with heights and percentage; a log
// line every 1,000 blocks and at the end.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { syncProgress } from '../../src/p2p/progress.ts';

describe('sync progress', () => {
  it('shows a line a person can follow', () => {
    let screen = '';
    const tty = {
      isTTY: true,
      write: (s: string) => {
        screen += s;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const logs: string[] = [];
    const log = pino(
      { level: 'info' },
      new Writable({
        write: (c, _e, cb) => {
          logs.push(String(c));
          cb();
        },
      }),
    );
    const p = syncProgress(log, 'gid', 'our forum', tty);
    p.update(100, 5000);
    p.update(1200, 5000);
    p.update(2500, 5000);
    p.done(5000);
    assert.match(screen, /sync our forum 100\/5000 blocks 2%/);
    assert.match(screen, /sync our forum 2500\/5000 blocks 50%/);
    assert.match(screen, /sync our forum 5000 blocks, up to date\n$/);
    assert.equal(screen.split('\r').length - 1, 4, 'each update rewrites the same line');
    const msgs = logs.map((l) => JSON.parse(l).msg);
    assert.deepEqual(msgs, [
      'sync 100/5000 blocks',
      'sync 1200/5000 blocks',
      'sync 2500/5000 blocks',
      'sync done',
    ]);
  });

  it('writes nothing to a non-terminal', () => {
    let screen = '';
    const pipe = {
      isTTY: false,
      write: (s: string) => {
        screen += s;
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const p = syncProgress(pino({ level: 'silent' }), 'gid', 'g', pipe);
    p.update(1, 2);
    p.done(2);
    assert.equal(screen, '');
  });
});
