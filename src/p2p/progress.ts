/**
 * The sync progress a person watches: on a terminal, one line per group rewritten in place
 * ("sync ourforum 1200/5000 blocks 24%"); in logs, a line every 1,000 blocks and at the end.
 */
import type { Logger } from 'pino';

export interface SyncProgress {
  update(height: number, best: number): void;
  done(height: number): void;
}

export function syncProgress(
  log: Logger,
  groupId: string,
  name: string,
  out: NodeJS.WriteStream = process.stderr,
): SyncProgress {
  let lastLogged = -1;
  let shown = false;
  const label = name.length > 24 ? `${name.slice(0, 23)}…` : name;
  return {
    update(height, best) {
      const top = Math.max(best, height);
      if (out.isTTY) {
        const pct = top === 0 ? 100 : Math.floor((height * 100) / top);
        out.write(`\r\x1b[2Ksync ${label} ${height}/${top} blocks ${pct}%`);
        shown = true;
      }
      if (lastLogged < 0 || height - lastLogged >= 1000) {
        lastLogged = height;
        log.info({ groupId, height, best: top }, `sync ${height}/${top} blocks`);
      }
    },
    done(height) {
      if (shown) out.write(`\r\x1b[2Ksync ${label} ${height} blocks, up to date\n`);
      if (lastLogged >= 0) log.info({ groupId, height }, 'sync done');
    },
  };
}
