/**
 * An independent Nostr relay for tests: bench/nostr-peer-relay.ts (`@nostr-relay/core` with its
 * SQLite repository, on `ws` on loopback) in a child process, on a port the OS picks.
 */
import { spawn } from 'node:child_process';

const SCRIPT = new URL('../../bench/nostr-peer-relay.ts', import.meta.url).pathname;

export interface PeerRelay {
  /** ws://127.0.0.1:port */
  url: string;
  stop(): Promise<void>;
}

/** Starts the peer relay keeping its events in `file` (SQLite); resolves once it listens. */
export async function startPeerRelay(file: string, timeoutMs = 20_000): Promise<PeerRelay> {
  const child = spawn(process.execPath, [SCRIPT, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the peer relay exited with ${code}`)));
      timer = setTimeout(() => reject(new Error('the peer relay did not listen')), timeoutMs);
    });
    return {
      url: `ws://127.0.0.1:${port}`,
      async stop() {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
