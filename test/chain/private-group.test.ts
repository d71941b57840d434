// A private group: POSTs are sealed with age to the members' keys, so the owner reads them and a
// node holding only the seed (not approved) sees ciphertext; config trxs stay under the cipher key.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aesDecrypt } from '../../src/crypto/aes.ts';
import { openTempNode } from '../helpers/temp-node.ts';

describe('private group', () => {
  it('seals posts to the owner; a seed holder without approval cannot read them', async () => {
    const { node: owner } = await openTempNode();
    const { node: outsider } = await openTempNode();
    const { groupId, seed } = await owner.createGroup({
      groupName: 'secret club',
      consensusType: 'poa',
      encryptionType: 'private',
      appKey: 'group_bbs',
    });
    assert.match(seed, /[?&]e=1&/, 'the seed says private');
    const g = owner.group(groupId);
    assert.match(g.row.userEncryptPubkey, /^age1/);

    const id = await owner.postContent(groupId, { type: 'Note', content: 'for members only' });
    await owner.setAppConfig(groupId, 'add', 'topic', 'string', 'secrets', '');
    const block = (await g.produce())!;

    const post = owner.store.getTrx(groupId, id)!.trx;
    assert.equal(
      Buffer.from(post.Data.subarray(0, 21)).toString(),
      'age-encryption.org/v1',
      'an age file',
    );
    assert.equal(aesDecrypt(g.cipherKey, post.Data), null, 'the seed cipher key does not open it');
    assert.equal(Buffer.from(post.Data).includes(Buffer.from('members only')), false);
    const rows = owner.store.queryContent({
      groupId,
      num: 10,
      reverse: false,
      includeStartTrx: false,
      senders: [],
    });
    assert.deepEqual(JSON.parse(Buffer.from(rows[0]!.data!).toString()), {
      content: 'for members only',
      type: 'Note',
    });

    const joined = await outsider.joinGroup(seed);
    assert.equal(joined.isPrivate, true);
    assert.deepEqual(await joined.applyBlock(block), { ok: true });
    const theirs = outsider.store.queryContent({
      groupId,
      num: 10,
      reverse: false,
      includeStartTrx: false,
      senders: [],
    });
    assert.equal(theirs.length, 1);
    assert.equal(theirs[0]!.data, null, 'the unapproved node stores the post unreadable');
    assert.equal(
      outsider.store.getAppConfig(groupId, 'topic')?.value,
      'secrets',
      'config trxs use the cipher key',
    );
    await assert.rejects(
      outsider.postContent(groupId, { type: 'Note', content: 'let me in' }),
      /not an approved member/,
    );
    await owner.stop();
    await outsider.stop();
  });
});
