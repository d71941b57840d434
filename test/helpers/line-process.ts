/**
 * A helper process spoken to by lines: started with its options as JSON in argv[2], it prints
 * one JSON line when ready, then answers each request line with one JSON line; ending its stdin
 * stops it. Test receivers and benchmark receivers run this way, in processes of their own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LineProcess<Ready> {
  child: ChildProcess;
  /** What the process printed when ready. */
  ready: Ready;
  /** Sends a request line; resolves to the JSON line answering it. */
  ask(line: string): Promise<unknown>;
  /** Ends the process's stdin and waits for it to exit. */
  stop(): Promise<void>;
}

export async function startLineProcess<Ready>(
  script: string,
  opts: unknown,
): Promise<LineProcess<Ready>> {
  const child = spawn(process.execPath, [script, JSON.stringify(opts)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const first = await Promise.race([
    next(),
    exited.then(() => {
      throw new Error(`${script} exited before it was ready`);
    }),
  ]);
  return {
    child,
    ready: JSON.parse(first) as Ready,
    async ask(line: string) {
      const answer = next();
      child.stdin!.write(`${line}\n`);
      return JSON.parse(await answer) as unknown;
    },
    async stop() {
      child.stdin!.end();
      await exited;
    },
  };
}
