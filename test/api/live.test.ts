// The live WebSocket over a real connection, with Node's own WebSocket client: committed trxs of
// the chosen group arrive as quorum JSON; other groups' trxs do not; the filter can change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  api,
  createPublicGroup,
  type NodeProcess,
  startNodeProcess,
} from '../helpers/node-process.ts';

describe('live updates over WebSocket', () => {
  let n: NodeProcess;
  before(async () => {
    n = await startNodeProcess();
  });
  after(async () => {
    await n.stop();
  });

  const create = async (name: string) => (await createPublicGroup(n.url, name)).group_id;

  it('pushes committed trxs of the requested groups only', async () => {
    const g1 = await create('live one');
    const g2 = await create('live two');
    const ws = new WebSocket(`${n.url.replace('http', 'ws')}/api/v1/ws/trx?group_id=${g1}`);
    const received: { TrxId: string; GroupId: string; Data: string; TimeStamp: string }[] = [];
    const control: unknown[] = [];
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(String(e.data));
      if (m.TrxId) received.push(m);
      else control.push(m);
    });
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve);
      ws.addEventListener('error', reject);
    });
    const other = await api(n.url, 'POST', `/api/v1/group/${g2}/content`, {
      data: { type: 'Note', content: 'elsewhere' },
    });
    const mine = await api(n.url, 'POST', `/api/v1/group/${g1}/content`, {
      data: { type: 'Note', content: 'here' },
    });
    for (let i = 0; i < 100 && !received.some((t) => t.TrxId === mine.json.trx_id); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const got = received.find((t) => t.TrxId === mine.json.trx_id);
    assert.ok(got, 'the post arrived');
    assert.equal(got.GroupId, g1);
    assert.equal(typeof got.TimeStamp, 'string');
    assert.ok(!received.some((t) => t.TrxId === other.json.trx_id), 'no trx of another group');

    ws.send(JSON.stringify({ group_ids: [g2] }));
    const later = await api(n.url, 'POST', `/api/v1/group/${g2}/content`, {
      data: { type: 'Note', content: 'now this one' },
    });
    for (let i = 0; i < 100 && !received.some((t) => t.TrxId === later.json.trx_id); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(
      received.some((t) => t.TrxId === later.json.trx_id),
      'the new filter applies',
    );
    assert.deepEqual(control[0], { subscribed: [g2] });
    ws.send('not json');
    for (let i = 0; i < 40 && control.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok(
      (control[1] as { message?: string }).message,
      'a bad control message gets an error message',
    );
    ws.close();
  });
});
