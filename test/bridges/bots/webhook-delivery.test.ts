// The webhook job kinds without a node: the signature against the standardwebhooks library's own
// (its sign and verify), job keys, the gate (a job of a gone endpoint sends nothing), what an
// attempt reports (final or not), and the method call a Telegram bot may answer with.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { PermanentDeliveryError } from '../../../bridges/port.ts';
import {
  methodCall,
  parseJobKey,
  signStandard,
  STANDARD_KIND,
  standardWebhookHandler,
  type WebhookOutcome,
  webhookJob,
} from '../../../bridges/bots/webhook-delivery.ts';
import { newSecret } from '../../../bridges/bots/webhook-admin.ts';

const update = {
  updateId: 7,
  kind: 'message',
  groupId: 'g-1',
  trxId: 't-1',
  payload: { message: { message_id: 1, text: 'hi' } },
  createdAt: Date.UTC(2026, 0, 2),
};

describe('bot webhook jobs', () => {
  it('signs as the standardwebhooks library does, and it verifies', () => {
    const secret = newSecret();
    const body = '{"type":"rum.message"}';
    const ts = Math.floor(Date.now() / 1000);
    const ours = signStandard(secret, 'msg_1_7', ts, body);
    assert.equal(ours, new Webhook(secret).sign('msg_1_7', new Date(ts * 1000), body));
    const headers = {
      'webhook-id': 'msg_1_7',
      'webhook-timestamp': String(ts),
      'webhook-signature': ours,
    };
    assert.deepEqual(new Webhook(secret).verify(body, headers), { type: 'rum.message' });
    assert.throws(() => new Webhook(newSecret()).verify(body, headers), /signature/);
  });

  it('makes one key per (endpoint, update), and reads it back', () => {
    const ep = {
      botId: 3,
      botCreatedAt: 1,
      gen: 'abc123',
      kind: 'standard' as const,
      url: 'https://h.example/x',
      secret: newSecret(),
    };
    const job = webhookJob(ep, update);
    assert.equal(job.key, `${STANDARD_KIND}:3:abc123:7`);
    assert.equal(job.destination, 'https://h.example');
    assert.deepEqual(parseJobKey(job.key), {
      kind: STANDARD_KIND,
      bot: 3,
      gen: 'abc123',
      update: 7,
    });
    assert.equal(parseJobKey('http-1'), null);
    assert.equal((job.payload as { id: string }).id, 'msg_3_1_7');
    const body = JSON.parse((job.payload as { body: string }).body);
    assert.deepEqual(body, {
      type: 'rum.message',
      timestamp: '2026-01-02T00:00:00.000Z',
      data: {
        update_id: 7,
        group_id: 'g-1',
        trx_id: 't-1',
        message: { message_id: 1, text: 'hi' },
      },
    });
    const tgJob = webhookJob({ ...ep, kind: 'telegram', secret: null }, update);
    assert.deepEqual(JSON.parse((tgJob.payload as { body: string }).body), {
      update_id: 7,
      message: { message_id: 1, text: 'hi' },
    });
  });

  it('sends nothing for a gone endpoint; reports each attempt, the last one final', async () => {
    const ep = {
      botId: 3,
      botCreatedAt: 1,
      gen: 'g1',
      kind: 'standard' as const,
      url: 'https://h.example/x',
      secret: newSecret(),
    };
    const job = webhookJob(ep, update);
    const sent: Record<string, string>[] = [];
    const reports: WebhookOutcome[] = [];
    let open = false;
    let answer: Error | null = null;
    const handler = standardWebhookHandler({
      post: async (_url, headers) => {
        sent.push(headers);
        if (answer) throw answer;
        return '';
      },
      gate: () => open,
      report: (o) => {
        reports.push(o);
      },
      maxAttempts: 3,
    });
    const run = (attempt: number) => handler({ id: '1', attempt, ...job });
    await run(1);
    assert.equal(sent.length, 0, 'the gate said no');
    open = true;
    answer = new Error('answered 500');
    await assert.rejects(run(1));
    await assert.rejects(run(3));
    answer = Object.assign(new PermanentDeliveryError('answered 410'), { status: 410 });
    await assert.rejects(run(1), PermanentDeliveryError);
    answer = null;
    await run(2);
    assert.deepEqual(
      reports.map((r) => [r.ok, r.final, r.status]),
      [
        [false, false, null],
        [false, true, null],
        [false, true, 410],
        [true, false, null],
      ],
    );
    assert.equal(new Set(sent.map((h) => h['webhook-id'])).size, 1);
  });

  it('reads a method call from a Telegram bot’s answer, and nothing else', () => {
    assert.deepEqual(methodCall('{"method":"sendMessage","chat_id":-1,"text":"x"}'), {
      method: 'sendMessage',
      chat_id: -1,
      text: 'x',
    });
    assert.equal(methodCall(''), null);
    assert.equal(methodCall('ok'), null);
    assert.equal(methodCall('{"ok":true}'), null);
    assert.equal(methodCall('{"method":"send Message"}'), null);
  });
});
