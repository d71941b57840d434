// The inbox's memory of remote actors' names: an entry lives its ttl, a dropped one is gone at
// once, and past the bound the least recently written go first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActorInfoCache } from '../../../bridges/activitypub/actor-cache.ts';

const info = (id: string, name: string) => ({
  id: new URL(id),
  name,
  preferredUsername: null,
  url: null,
});

describe('ActivityPub: remote actor info cache', () => {
  it('answers an entry until its ttl runs out, and not after', () => {
    const c = new ActorInfoCache({ ttlMs: 1000 });
    c.set('https://a.example/u/1', info('https://a.example/u/1', 'One'), 10_000);
    assert.equal(c.get('https://a.example/u/1', 10_999)?.name, 'One');
    assert.equal(c.get('https://a.example/u/1', 11_000), undefined);
    assert.equal(c.size, 0, 'an expired entry is removed when found');
  });

  it('forgets a dropped actor at once (its Update or Delete)', () => {
    const c = new ActorInfoCache();
    c.set('https://a.example/u/1', info('https://a.example/u/1', 'One'));
    c.drop('https://a.example/u/1');
    assert.equal(c.get('https://a.example/u/1'), undefined);
  });

  it('keeps at most its bound, the oldest written going first', () => {
    const c = new ActorInfoCache({ max: 2 });
    c.set('https://a.example/u/1', info('https://a.example/u/1', 'One'));
    c.set('https://a.example/u/2', info('https://a.example/u/2', 'Two'));
    c.set('https://a.example/u/1', info('https://a.example/u/1', 'One again'));
    c.set('https://a.example/u/3', info('https://a.example/u/3', 'Three'));
    assert.equal(c.size, 2);
    assert.equal(c.get('https://a.example/u/2'), undefined, 'the oldest write went');
    assert.equal(c.get('https://a.example/u/1')?.name, 'One again');
    assert.equal(c.get('https://a.example/u/3')?.name, 'Three');
  });
});
