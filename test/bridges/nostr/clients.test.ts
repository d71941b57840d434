// Independent Nostr clients against the real gateway on loopback, with the relay as rum fullnode
// runs it (outside groups it keeps kinds 0, 3, 10002, 10009): nostr-tools' SimplePool, NDK 3 and
// rust-nostr's SDK
// (WebAssembly). Each publishes, reads back, subscribes live, counts (NIP-45) and authenticates
// (NIP-42) to publish a protected event (NIP-70), which only an AUTHed author may. Each runs in
// a worker thread (clients-worker.ts), ended when its session is over.
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { startRelay, type TestRelay } from './raw-client.ts';

let relay: TestRelay;

before(async () => {
  relay = await startRelay();
});

after(async () => {
  await relay.stop();
});

/** Runs one client's session in a worker; rejects with its failure, or after 60 s. */
async function session(which: 'nostr-tools' | 'ndk' | 'rust'): Promise<void> {
  const worker = new Worker(new URL('./clients-worker.ts', import.meta.url), {
    workerData: { which, url: relay.url },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${which}: no answer in 60 s`)), 60_000);
      worker.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      worker.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${which}: the worker exited (${code}) before it was done`));
      });
    });
  } finally {
    await worker.terminate();
  }
}

describe('independent clients', () => {
  it('nostr-tools SimplePool: publishes, reads back, subscribes live, counts, authenticates', () =>
    session('nostr-tools'));
  it('NDK 3: publishes, reads back, subscribes live, counts, authenticates', () => session('ndk'));
  it('rust-nostr 0.43 (WebAssembly): publishes, reads back, subscribes live, counts, authenticates', () =>
    session('rust'));
});
