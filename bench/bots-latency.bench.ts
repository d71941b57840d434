/**
 * bots.latency: from a trx's commit to a long-polling bot's getUpdates answer (issue 11: p50
 * ≤ 50 ms). One `rum fullnode` process on default settings (200 ms blocks, --dbsync full), a
 * public group exposed to bots, one bot. The benchmark's process is the bot, long-polling the
 * gateway over HTTP/1.1 keep-alive (`getUpdates` with its offset and timeout 25, at once again
 * after each answer, as grammY and Telegraf do), and also a client of the node's
 * /api/v1/ws/trx WebSocket, which pushes each trx once its block is committed on the node.
 *
 * Notes are POSTed one at a time on the node's API, each once the previous one reached the bot,
 * after a random pause of 0–100 ms (so that posts fall anywhere in the block interval).
 * "Commit" is when the trx arrives on the WebSocket (the node pushes it after the block with the
 * trx is stored and indexed); the latency of a Note is from then to when the bot's getUpdates
 * answer carrying it is read, both on this process's clock. It includes the feed reading the
 * committed stream, the SQLite transaction that logs the update for the bot (fsynced), waking
 * the poll, the answer's JSON and HTTP. It leaves out the wait for the block (also printed:
 * `post_to_answer_p50_ms`, from the POST to the answer) and the WebSocket's own delivery, which
 * runs beside the bot's path, not before it (a negative latency would mean the bot was told
 * first; the percentiles show it as it is).
 *
 * Baseline in the same run: a raw round trip of the same bot on the same gateway route and the
 * same kind of keep-alive connection, answered at once (`getMe`: the token checked, a JSON
 * answer), p50 and p99 of 2,000.
 */
import http from 'node:http';
import { api, createPublicGroup } from '../test/helpers/node-process.ts';
import {
  noteBody,
  percentile,
  postJson,
  report,
  startBenchNode,
  stopAll,
  watchCommits,
} from './lib.ts';

const POSTS = Number(process.env.BENCH_POSTS ?? 200);
const WARMUP = 20;
const RTTS = 2000;
const POLL_S = 25;

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** One HTTP request on the keep-alive agent; resolves to the status and the body as text. */
function request(
  url: string,
  method: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: body
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const node = await startBenchNode();
try {
  const { group_id: groupId } = await createPublicGroup(node.url, 'bots-latency');
  const put = await api(node.url, 'PUT', `/api/v1/group/${groupId}/bridges`, {
    handle: 'latency',
    bots: true,
  });
  if (put.status !== 200) throw new Error(`expose: ${put.status} ${put.text}`);
  const made = await api(node.url, 'POST', '/api/v1/bots', {
    name: 'latency',
    group_ids: [groupId],
  });
  if (made.status !== 201) throw new Error(`bot: ${made.status} ${made.text}`);
  const pollUrl = `${node.gatewayUrl}/bot${made.json.token}/getUpdates`;
  const commits = await watchCommits(node.url, groupId);

  // The bot: long polls one after another; when each text arrived.
  const answeredAt = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  let stopped = false;
  let offset = 0;
  const bot = (async () => {
    while (!stopped) {
      const res = await request(pollUrl, 'POST', JSON.stringify({ offset, timeout: POLL_S }));
      const at = performance.now();
      if (res.status !== 200) throw new Error(`getUpdates ${res.status}: ${res.text}`);
      for (const u of JSON.parse(res.text).result as {
        update_id: number;
        message?: { text?: string };
      }[]) {
        offset = u.update_id + 1;
        const text = u.message?.text;
        if (text === undefined) continue;
        answeredAt.set(text, at);
        waiting.get(text)?.();
      }
    }
  })();

  const fromCommit: number[] = [];
  const fromPost: number[] = [];
  for (let i = 0; i < WARMUP + POSTS; i++) {
    const text = `latency ${i}`;
    const reached = new Promise<void>((resolve) => waiting.set(text, resolve));
    const sent = performance.now();
    const res = await postJson(`${node.url}/api/v1/group/${groupId}/content`, noteBody(text));
    if (res.status !== 200) throw new Error(`POST ${res.status}: ${res.json.message}`);
    const trxId = res.json.trx_id as string;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      reached,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${text} never reached the bot`)), 10_000);
      }),
    ]);
    clearTimeout(timer);
    waiting.delete(text);
    // The WebSocket may tell a moment after the bot was answered.
    for (let w = 0; !commits.times.has(trxId) && w < 200; w++)
      await new Promise((r) => setTimeout(r, 5));
    const committed = commits.times.get(trxId);
    if (committed === undefined) throw new Error(`${text} never came on the WebSocket`);
    if (i >= WARMUP) {
      fromCommit.push(answeredAt.get(text)! - committed);
      fromPost.push(answeredAt.get(text)! - sent);
    }
    await new Promise((r) => setTimeout(r, Math.random() * 100));
  }
  commits.close();

  stopped = true;
  // The baseline: the bot's own round trips on the same connection and route, answered at once
  // (getMe: the token checked, a JSON answer; no update to wait for).
  const getMe = `${node.gatewayUrl}/bot${made.json.token}/getMe`;
  const rtts: number[] = [];
  for (let i = 0; i < RTTS; i++) {
    const t = performance.now();
    const r = await request(getMe, 'GET');
    if (r.status !== 200) throw new Error(`getMe ${r.status}: ${r.text}`);
    rtts.push(performance.now() - t);
  }

  const extra = {
    unit: 'ms',
    posts: POSTS,
    post_to_answer_p50_ms: Math.round(percentile(fromPost, 50) * 10) / 10,
    bot_first: fromCommit.filter((x) => x < 0).length,
  };
  report({
    name: 'bots.latency-p50',
    value: percentile(fromCommit, 50),
    baseline: percentile(rtts, 50),
    target: 50,
    ...extra,
  });
  report({
    name: 'bots.latency-p99',
    value: percentile(fromCommit, 99),
    baseline: percentile(rtts, 99),
    ...extra,
  });
  // The poll in flight ends when the node stops.
  void bot.catch(() => {});
} finally {
  agent.destroy();
  await stopAll([node]);
}
