// Pages for people (bridges/activitypub/pages.ts) on a real gateway, in process: the group page
// with its posts from every network, newest first and paged; a post's page with its replies and
// where it went (deliveries done, pending and failed by instance); 404s for unknown, private and
// suspended groups; browsers at the ActivityPub URLs redirected to the pages; every value
// escaped. Then the same pages in headless Chromium (Debian's `chromium`, over the DevTools
// protocol): they render, with no script and no error. Without chromium that part is skipped,
// except under CI=true, where it must run.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ApState } from '../../../bridges/activitypub/federation.ts';
import { activityPubBridge } from '../../../bridges/activitypub/index.ts';
import { DeliveryLog, PAGE_POSTS, trxOfActivity } from '../../../bridges/activitypub/pages.ts';
import { ApUrls } from '../../../bridges/activitypub/urls.ts';
import { type Gateway, startGateway } from '../../../src/gateway/gateway.ts';
import type { RumNode } from '../../../src/node.ts';
import { type ApPeer, startApPeer } from '../../helpers/ap-peer.ts';
import { openTempNode } from '../../helpers/temp-node.ts';
import { until } from '../../helpers/until.ts';

const HOSTILE_NAME = 'Pages <b>& "Co"</b>';
const HOSTILE_PEER = 'Mallory <img src=x onerror=alert(1)>';
const PLAIN_HOSTILE = '1 < 2 <script>window.__pwned = 1</script> & plain';
const HTML_HOSTILE =
  '<p>hello <b>world</b></p><script>window.__pwned = 2</script><img src=x onerror="window.__pwned = 3">';

let node: RumNode;
let gateway: Gateway;
let state: ApState;
let peer: ApPeer;
let groupId: string;
let host: string;
const servers: http.Server[] = [];
/** Trx ids of the group's posts, oldest first. */
const posts: string[] = [];
let hostilePlain: string;
let hostileHtml: string;
let replyTrx: string;
let nostrTrx: string;
let failingHost: string;
let retryingHost: string;
const secret = { suspendedTrx: '', privateTrx: '' };

async function produce(gid = groupId): Promise<void> {
  await node.group(gid).produce();
}

async function post(content: string, gid = groupId): Promise<string> {
  const id = await node.postContent(gid, { type: 'Note', content });
  await produce(gid);
  return id;
}

/** An inbox on loopback that answers every POST with one status. */
async function inboxAnswering(status: number): Promise<string> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function page(path: string, accept = 'text/html') {
  const res = await fetch(`${gateway.origin}${path}`, { headers: { accept }, redirect: 'manual' });
  return { res, html: await res.text() };
}

before(async () => {
  ({ node } = await openTempNode({ gatewayPort: 0, allowPrivateAddress: true }));
  const bridge = activityPubBridge();
  gateway = await startGateway(node, [bridge]);
  state = bridge.state();
  host = new URL(gateway.origin).host;
  ({ groupId } = await node.createGroup({
    groupName: HOSTILE_NAME,
    consensusType: 'poa',
    encryptionType: 'public',
    appKey: 'group_bbs',
  }));
  await node.setAppConfig(groupId, 'add', 'group_desc', 'string', 'About <i>us</i> & "them"', '');
  await produce();
  gateway.exposures.put(groupId, { handle: 'pages' });

  // Followers: a Mastodon-like peer (delivered), an instance that refuses (403: failed for
  // good) and one that is down (500: retried later, so pending).
  peer = await startApPeer({ name: HOSTILE_PEER });
  await peer.follow(`${gateway.origin}/ap/actors/g.pages`);
  failingHost = await inboxAnswering(403);
  retryingHost = await inboxAnswering(500);
  for (const h of [failingHost, retryingHost]) {
    state.followers.add('g.pages', {
      id: `http://${h}/users/bob`,
      inbox: `http://${h}/users/bob/inbox`,
      sharedInbox: null,
      follow: `http://${h}/follows/1`,
      since: Date.now(),
    });
  }

  posts.push(await post('the first post'));
  hostilePlain = await post(PLAIN_HOSTILE);
  posts.push(hostilePlain);
  hostileHtml = await post(HTML_HOSTILE);
  posts.push(hostileHtml);
  // A reply from the fediverse, and a post that came from Nostr.
  const sent = await peer.createNote({
    content: '<p>a reply from afar</p>',
    inReplyTo: `${gateway.origin}/ap/posts/${posts[0]}`,
    cc: [peer.followersUrl, `${gateway.origin}/ap/actors/g.pages`],
  });
  for (const d of sent.deliveries) assert.ok(d.status >= 200 && d.status < 300, d.body);
  await produce();
  replyTrx = await until(
    () => gateway.port.replies(groupId, posts[0]!, 10).find((i) => i.type === 'Note')?.trxId,
    'the reply in the chain',
  );
  nostrTrx = (
    await gateway.port.submit({
      groupId,
      network: 'nostr',
      externalId: 'nostr-event-1',
      author: 'f'.repeat(64),
      object: { type: 'Note', content: 'posted from nostr' },
    })
  ).trxId;
  await produce();

  // A group whose owner forbids bridging (suspended), and one not on ActivityPub.
  const susp = (
    await node.createGroup({
      groupName: 'Suspended secrets',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    })
  ).groupId;
  gateway.exposures.put(susp, { handle: 'suspended' });
  secret.suspendedTrx = await post('suspended secret', susp);
  await node.setAppConfig(susp, 'add', 'bridging', 'string', 'off', '');
  await produce(susp);
  assert.ok(gateway.port.exposure(susp)?.suspended);
  const priv = (
    await node.createGroup({
      groupName: 'Private secrets',
      consensusType: 'poa',
      encryptionType: 'private',
      appKey: 'group_bbs',
    })
  ).groupId;
  gateway.exposures.put(priv, { handle: 'private', activitypub: false });
  secret.privateTrx = await post('private secret', priv);
});

after(async () => {
  await peer?.close();
  await gateway?.stop();
  await node?.stop();
  for (const s of servers) s.close();
});

describe('bridge port: replies', () => {
  it('answers the items that reply to a trx, oldest first, bounded by the limit', async () => {
    const likeTrx = await node.postContent(groupId, {
      type: 'Like',
      object: { type: 'Note', id: posts[0] },
    });
    await produce();
    const all = gateway.port.replies(groupId, posts[0]!, 10);
    assert.deepEqual(
      all.map((i) => i.trxId),
      [replyTrx, likeTrx],
    );
    assert.equal(all[0]!.origin?.network, 'activitypub');
    assert.deepEqual(
      gateway.port.replies(groupId, posts[0]!, 1).map((i) => i.trxId),
      [replyTrx],
    );
    assert.deepEqual(gateway.port.replies(groupId, posts[1]!, 10), []);
    assert.deepEqual(gateway.port.replies(groupId, 'no-such-trx', 10), []);
  });
});

describe('delivery outcomes', () => {
  /** A BridgeKv in memory that counts its writes. */
  function memoryKv() {
    const m = new Map<string, unknown>();
    const kv = {
      writes: 0,
      get: <T>(k: string) => m.get(k) as T | undefined,
      set: (k: string, v: unknown) => {
        kv.writes++;
        m.set(k, v);
      },
      delete: (k: string) => void m.delete(k),
      list: (prefix: string) =>
        [...m.keys()]
          .filter((k) => k.startsWith(prefix))
          .sort()
          .map((key) => ({ key, value: m.get(key) })),
      cas: () => false,
    };
    return kv;
  }
  const urls = new ApUrls('https://rum.example');
  const create = urls.create('t1').href;
  const announce = urls.announce('g', 't1').href;
  const inbox = (h: string) => `https://${h}/inbox`;

  it('follows each delivery: queued, retried, done or failed, and a Retry-After re-queue', () => {
    const kv = memoryKv();
    let transactions = 0;
    const log = new DeliveryLog(
      kv,
      () => urls,
      (fn) => {
        transactions++;
        fn();
      },
    );
    log.queued(create, inbox('a.example'), 0);
    log.queued(announce, inbox('a.example'), 0);
    log.queued(create, inbox('b.example'), 0);
    log.queued(create, inbox('c.example'), 0);
    log.queued(create, inbox('d.example'), 0);
    // Buffered: nothing written until flushed, then in one transaction.
    assert.equal(kv.writes, 0);
    log.outcome(create, inbox('a.example'), 0, 'done');
    log.outcome(announce, inbox('a.example'), 0, 'done');
    log.outcome(create, inbox('b.example'), 0, 'pending', 'answered 500');
    log.outcome(create, inbox('c.example'), 0, 'failed', 'answered 403');
    // d: Fedify re-queued it for a Retry-After (attempt 1); the first job then ends as done.
    log.queued(create, inbox('d.example'), 1);
    log.outcome(create, inbox('d.example'), 0, 'done');
    // A 404/410 that Fedify handles itself: the job ends as done, the delivery failed.
    log.queued(announce, inbox('e.example'), 0);
    log.gone(announce, inbox('e.example'), 410);
    log.outcome(announce, inbox('e.example'), 0, 'done');
    // Not an activity of one of our posts: not recorded.
    log.queued('https://elsewhere.example/ap/posts/t1/create', inbox('a.example'), 0);
    log.queued(urls.group('g').href, inbox('a.example'), 0);
    const s = log.summary('t1');
    assert.equal(transactions, 1);
    assert.equal(kv.writes, 6);
    assert.deepEqual(
      s.instances.map((r) => [r.host, r.done, r.pending, r.failed, r.lastError]),
      [
        ['a.example', 2, 0, 0, null],
        ['b.example', 0, 1, 0, 'answered 500'],
        ['c.example', 0, 0, 1, 'answered 403'],
        ['d.example', 0, 1, 0, null],
        ['e.example', 0, 0, 1, 'gone (410)'],
      ],
    );
    assert.deepEqual([s.delivered, s.pending, s.failed], [1, 2, 2]);
    log.outcome(create, inbox('d.example'), 1, 'done');
    log.outcome(create, inbox('b.example'), 0, 'done');
    const after = log.summary('t1');
    assert.deepEqual([after.delivered, after.pending, after.failed], [3, 0, 2]);
    assert.deepEqual(log.summary('t2').instances, []);
  });

  it('knows the trx of each activity id of a post', () => {
    assert.equal(trxOfActivity(urls, create), 't1');
    assert.equal(trxOfActivity(urls, urls.post('t1').href), 't1');
    assert.equal(trxOfActivity(urls, announce), 't1');
    assert.equal(trxOfActivity(urls, `${announce}#create`), 't1');
    assert.equal(trxOfActivity(urls, urls.group('g').href), null);
    assert.equal(trxOfActivity(urls, 'https://other.example/ap/posts/t1'), null);
    assert.equal(trxOfActivity(urls, 'not a url'), null);
  });
});

describe('the group page', () => {
  it('shows the group, escaped, with its posts from every network, newest first', async () => {
    const { res, html } = await page('/@pages');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(html, /^<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">/);
    assert.ok(html.includes('<h1>Pages &lt;b&gt;&amp; &quot;Co&quot;&lt;/b&gt;</h1>'), html);
    assert.ok(html.includes(`@pages@${host}`));
    assert.ok(html.includes('About &lt;i&gt;us&lt;/i&gt; &amp; &quot;them&quot;'));
    assert.match(html, /3 followers/);
    // Newest first: the Nostr post, the reply from the fediverse, then the group's own posts.
    const order = [nostrTrx, replyTrx, hostileHtml, hostilePlain, posts[0]!].map((t) =>
      html.indexOf(`<article class="post" id="p-${t}">`),
    );
    for (const at of order) assert.ok(at > 0, html);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
    );
    assert.ok(html.includes('posted from nostr'));
    assert.ok(html.includes('(nostr)'));
    assert.ok(html.includes('a reply from afar'));
    assert.ok(html.includes(`href="${peer.profileUrl}"`) || html.includes(peer.actorId));
    assert.ok(html.includes('Mallory &lt;img src=x onerror=alert(1)&gt;'), 'peer name escaped');
  });

  it('escapes a hostile post: no script, no handler, the plain text shown as text', async () => {
    const { html } = await page('/@pages');
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<[^>]*\son\w+=/i, 'no event handler attribute');
    assert.doesNotMatch(html, /<img/i);
    assert.ok(
      html.includes('1 &lt; 2 &lt;script&gt;window.__pwned = 1&lt;/script&gt; &amp; plain'),
    );
    assert.ok(html.includes('<p>hello <b>world</b></p>'));
  });

  it('pages with ?before=, and an ActivityPub client is sent to the actor', async () => {
    const { groupId: many } = await node.createGroup({
      groupName: 'Many',
      consensusType: 'poa',
      encryptionType: 'public',
      appKey: 'group_bbs',
    });
    gateway.exposures.put(many, { handle: 'many' });
    const ids: string[] = [];
    for (let i = 0; i < PAGE_POSTS + 3; i++) {
      ids.push(await node.postContent(many, { type: 'Note', content: `many #${i}` }));
    }
    await node.postContent(many, { type: 'Like', object: { type: 'Note', id: ids[0] } });
    await produce(many);
    const first = await page('/@many');
    const shown = (html: string) => [...html.matchAll(/many #(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      shown(first.html),
      Array.from({ length: PAGE_POSTS }, (_, i) => PAGE_POSTS + 2 - i),
    );
    const next = /<a rel="next" href="([^"]+)"/.exec(first.html)?.[1];
    assert.ok(next, 'a link to older posts');
    const second = await fetch(next.replaceAll('&amp;', '&'), { headers: { accept: 'text/html' } });
    const html2 = await second.text();
    assert.deepEqual(shown(html2), [2, 1, 0]);
    assert.doesNotMatch(html2, /rel="next"/);

    const ap = await page('/@many', 'application/activity+json');
    assert.equal(ap.res.status, 302);
    assert.equal(ap.res.headers.get('location'), `${gateway.origin}/ap/actors/g.many`);
  });

  it('answers 404 for an unknown handle, a suspended group and a group not on ActivityPub', async () => {
    for (const handle of ['nobody', 'suspended', 'private']) {
      const { res, html } = await page(`/@${handle}`);
      assert.equal(res.status, 404, handle);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.doesNotMatch(html, /secret/);
    }
  });
});

describe('the post page', () => {
  it('shows the post and its replies, whichever network they came from', async () => {
    const { res, html } = await page(`/p/${posts[0]}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.ok(html.includes('the first post'));
    assert.match(html, /Replies \(1\)/);
    assert.ok(html.includes('a reply from afar'));
    assert.ok(html.includes('Mallory &lt;img'));
    assert.ok(html.includes(`href="${gateway.origin}/@pages"`));
    // The reply's own page links back to what it answers.
    const reply = await page(`/p/${replyTrx}`);
    assert.equal(reply.res.status, 200);
    assert.ok(reply.html.includes(`in reply to <a href="${gateway.origin}/p/${posts[0]}">`));
  });

  it('shows where it went: delivered, pending and failed, by instance', async () => {
    const trx = posts[0]!;
    const summary = await until(() => {
      const s = pagesSummary(trx);
      return s && s.delivered === 1 && s.failed === 1 && s.pending === 1 ? s : undefined;
    }, 'the deliveries of the first post');
    const byHost = new Map(summary.instances.map((r) => [r.host, r]));
    assert.equal(byHost.get(peer.host)?.done, 2, 'the Create and the Announce');
    assert.equal(byHost.get(failingHost)?.failed, 2);
    assert.equal(byHost.get(retryingHost)?.pending, 2);
    const { html } = await page(`/p/${trx}`);
    assert.match(html, /Where it went/);
    assert.match(html, /Delivered to 1 instance · pending at 1 instance · failed at 1 instance/);
    for (const h of [peer.host, failingHost, retryingHost])
      assert.ok(html.includes(`<td>${h}</td>`));
    assert.match(html, /403/);
  });

  it('escapes a hostile plain-text post and sanitizes a hostile HTML one', async () => {
    const plain = await page(`/p/${hostilePlain}`);
    assert.equal(plain.res.status, 200);
    assert.doesNotMatch(plain.html, /<script/i);
    assert.ok(plain.html.includes('&lt;script&gt;window.__pwned = 1&lt;/script&gt;'));
    const rich = await page(`/p/${hostileHtml}`);
    assert.doesNotMatch(rich.html, /<script|<img|<[^>]*\son\w+=/i);
    assert.ok(rich.html.includes('<p>hello <b>world</b></p>'));
  });

  it('answers 404 for an unknown trx and for posts of suspended or private groups', async () => {
    for (const trx of ['no-such-trx', secret.suspendedTrx, secret.privateTrx]) {
      const { res, html } = await page(`/p/${encodeURIComponent(trx)}`);
      assert.equal(res.status, 404, trx);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.doesNotMatch(html, /secret/);
    }
  });
});

describe('a browser at an ActivityPub URL', () => {
  it('is sent to the group page from the actor, and to the post page from a post', async () => {
    const actor = await page('/ap/actors/g.pages');
    assert.equal(actor.res.status, 302);
    assert.equal(actor.res.headers.get('location'), `${gateway.origin}/@pages`);
    const note = await page(`/ap/posts/${posts[0]}`);
    assert.equal(note.res.status, 302);
    assert.equal(note.res.headers.get('location'), `${gateway.origin}/p/${posts[0]}`);
    // Followed, as a browser does: the page.
    const res = await fetch(`${gateway.origin}/ap/actors/g.pages`, {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.url, `${gateway.origin}/@pages`);
    assert.match(await res.text(), /the first post/);
    // ActivityPub clients still get JSON at the same URL.
    const json = await fetch(`${gateway.origin}/ap/actors/g.pages`, {
      headers: { accept: 'application/activity+json' },
    });
    assert.equal(json.status, 200);
    assert.equal(((await json.json()) as { type: string }).type, 'Group');
  });

  it('gets a 404 page for an unknown or suspended group and post', async () => {
    for (const path of [
      '/ap/actors/g.nobody',
      '/ap/actors/g.suspended',
      '/ap/posts/no-such-trx',
      `/ap/posts/${secret.suspendedTrx}`,
    ]) {
      const { res, html } = await page(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.doesNotMatch(html, /secret/);
    }
  });
});

/** The delivery outcomes of a post, as its page reads them. */
function pagesSummary(trx: string) {
  return new DeliveryLog(state.kv, () => state.urls).summary(trx);
}

// ---- headless Chromium over the DevTools protocol ----

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const IN_CI = process.env.CI === 'true';

// biome-ignore lint/suspicious/noExplicitAny: DevTools protocol messages are free-form JSON
type Cdp = Record<string, any>;

class Browser {
  private readonly proc: ChildProcess;
  private readonly ws: WebSocket;
  private readonly dir: string;
  private next = 1;
  private readonly calls = new Map<
    number,
    { resolve: (v: Cdp) => void; reject: (e: Error) => void }
  >();
  readonly events: { method: string; params: Cdp; sessionId?: string }[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(proc: ChildProcess, ws: WebSocket, dir: string) {
    this.proc = proc;
    this.ws = ws;
    this.dir = dir;
    ws.addEventListener('message', (e) => {
      const msg = JSON.parse(String(e.data)) as Cdp;
      if (typeof msg.id === 'number') {
        const call = this.calls.get(msg.id);
        this.calls.delete(msg.id);
        if (msg.error) call?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
        else call?.resolve(msg.result);
      } else {
        this.events.push({ method: msg.method, params: msg.params, sessionId: msg.sessionId });
        for (const w of [...this.waiters]) w();
      }
    });
  }

  static async launch(executable: string): Promise<Browser> {
    const dir = mkdtempSync(join(tmpdir(), 'rum-chromium-'));
    const proc = spawn(
      executable,
      [
        '--headless=new',
        '--disable-gpu',
        '--no-sandbox',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-extensions',
        '--disable-background-networking',
        '--disable-dev-shm-usage',
        '--remote-debugging-port=0',
        `--user-data-dir=${dir}`,
        'about:blank',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not start: ${err}`)), 30_000);
      proc.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${code}): ${err}`));
      });
    });
    const ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('no DevTools connection')), {
        once: true,
      });
    });
    return new Browser(proc, ws, dir);
  }

  send(method: string, params: Cdp = {}, sessionId?: string): Promise<Cdp> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  async waitFor(
    match: (e: { method: string; params: Cdp; sessionId?: string }) => boolean,
    ms = 20_000,
  ) {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (Date.now() > end) throw new Error('timed out waiting for a DevTools event');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.add(() => {
          clearTimeout(t);
          r();
        });
      });
      this.waiters.clear();
    }
  }

  /** Opens a page in a new tab, waits for its load, and answers what it shows. */
  async load(url: string) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    await this.send('Page.enable', {}, sessionId);
    await this.send('Runtime.enable', {}, sessionId);
    await this.send('Log.enable', {}, sessionId);
    const nav = await this.send('Page.navigate', { url }, sessionId);
    assert.equal(nav.errorText, undefined, `navigating to ${url}`);
    await this.waitFor((e) => e.sessionId === sessionId && e.method === 'Page.loadEventFired');
    const evaluate = async (expression: string) =>
      (await this.send('Runtime.evaluate', { expression, returnByValue: true }, sessionId)).result
        .value;
    const shown = {
      title: (await evaluate('document.title')) as string,
      text: (await evaluate('document.body.innerText')) as string,
      scripts: (await evaluate('document.scripts.length')) as number,
      pwned: (await evaluate('typeof window.__pwned')) as string,
      charset: (await evaluate('document.characterSet')) as string,
      h1: (await evaluate("document.querySelector('h1')?.textContent ?? null")) as string | null,
    };
    // Give late errors (a blocked resource, a CSP report) a moment to arrive.
    await new Promise((r) => setTimeout(r, 300));
    const problems = this.events
      .filter((e) => e.sessionId === sessionId)
      .filter(
        (e) =>
          e.method === 'Runtime.exceptionThrown' ||
          (e.method === 'Log.entryAdded' && ['error', 'warning'].includes(e.params.entry.level)) ||
          (e.method === 'Runtime.consoleAPICalled' && ['error', 'warning'].includes(e.params.type)),
      )
      .map((e) => JSON.stringify(e.params).slice(0, 500));
    await this.send('Target.closeTarget', { targetId });
    return { ...shown, problems };
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.send('Browser.close'), new Promise((r) => setTimeout(r, 3000))]);
    } catch {}
    this.ws.close();
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      this.proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('in headless Chromium', () => {
  const skip = !CHROMIUM && !IN_CI ? 'chromium is not installed (apt-get install chromium)' : false;
  let browser: Browser;

  before(async () => {
    if (skip) return;
    assert.ok(CHROMIUM, 'CI=true: chromium must be installed (.ci/run installs it)');
    browser = await Browser.launch(CHROMIUM);
  });

  after(async () => {
    await browser?.close();
  });

  it('the check itself sees a script error and a console error', { skip }, async () => {
    const shown = await browser.load(
      `data:text/html,${encodeURIComponent("<script>console.error('seen'); throw new Error('boom')</script>")}`,
    );
    assert.equal(shown.scripts, 1);
    assert.ok(
      shown.problems.some((p) => p.includes('boom')),
      JSON.stringify(shown.problems),
    );
    assert.ok(shown.problems.some((p) => p.includes('seen')));
  });

  it(
    'renders the group page: its name and posts, with no script and no error',
    { skip },
    async () => {
      const shown = await browser.load(`${gateway.origin}/@pages`);
      assert.equal(shown.charset, 'UTF-8');
      assert.equal(shown.h1, HOSTILE_NAME);
      assert.match(shown.title, /Pages <b>& "Co"<\/b>/);
      assert.ok(shown.text.includes('the first post'), shown.text);
      assert.ok(shown.text.includes('posted from nostr'));
      assert.ok(shown.text.includes('a reply from afar'));
      assert.ok(shown.text.includes(PLAIN_HOSTILE), 'the hostile plain text is shown as text');
      assert.ok(shown.text.includes(HOSTILE_PEER), 'the hostile name is shown as text');
      assert.equal(shown.scripts, 0);
      assert.equal(shown.pwned, 'undefined');
      assert.deepEqual(shown.problems, []);
    },
  );

  it(
    'renders a post page: the post, its reply and where it went, with no error',
    { skip },
    async () => {
      const shown = await browser.load(`${gateway.origin}/p/${posts[0]}`);
      assert.ok(shown.text.includes('the first post'), shown.text);
      assert.ok(shown.text.includes('a reply from afar'));
      assert.ok(shown.text.includes('Where it went'));
      assert.ok(shown.text.includes(peer.host));
      assert.equal(shown.scripts, 0);
      assert.deepEqual(shown.problems, []);
      const rich = await browser.load(`${gateway.origin}/p/${hostileHtml}`);
      assert.ok(rich.text.includes('hello world'), rich.text);
      assert.equal(rich.scripts, 0);
      assert.equal(rich.pwned, 'undefined');
      assert.deepEqual(rich.problems, []);
    },
  );

  it('follows the actor URL to the group page, as a browser does', { skip }, async () => {
    const shown = await browser.load(`${gateway.origin}/ap/actors/g.pages`);
    assert.equal(shown.h1, HOSTILE_NAME);
    assert.deepEqual(shown.problems, []);
  });
});
