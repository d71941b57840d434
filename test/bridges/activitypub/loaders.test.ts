// The federation's loaders are made once per set of options, and the contexts Fedify bundles
// are tagged static, so jsonld.js processes ActivityStreams once per process instead of at
// every parse (bridges/activitypub/loaders.ts). Fails if a Fedify upgrade moves the factories.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createFederation, MemoryKvStore } from '@fedify/fedify';
import { Create } from '@fedify/vocab';
import { wrapLoaders } from '../../../bridges/activitypub/loaders.ts';

const AS = 'https://www.w3.org/ns/activitystreams';

type Factory = (o?: unknown) => (url: string, o?: unknown) => Promise<unknown>;

function federationWithSpy() {
  const federation = createFederation<void>({
    kv: new MemoryKvStore(),
    allowPrivateAddress: true,
    userAgent: { software: 'rum-test/0' },
  });
  const impl = federation as unknown as { contextLoaderFactory: Factory };
  const loads: string[] = [];
  const inner = impl.contextLoaderFactory.bind(impl);
  // A spy under the wrapper: every context load that reaches Fedify's own loader.
  impl.contextLoaderFactory = (o) => {
    const load = inner(o);
    return (url, opts) => {
      loads.push(url);
      return load(url, opts);
    };
  };
  wrapLoaders(federation);
  return { federation, loads };
}

function activity(n: number) {
  return {
    '@context': AS,
    id: `https://remote.example/activities/${n}`,
    type: 'Create',
    actor: 'https://remote.example/users/a',
    object: {
      id: `https://remote.example/notes/${n}`,
      type: 'Note',
      content: `note ${n}`,
      attributedTo: 'https://remote.example/users/a',
    },
  };
}

describe('ActivityPub: Fedify loaders', () => {
  it('makes one loader per set of options', () => {
    const { federation } = federationWithSpy();
    const impl = federation as unknown as {
      contextLoaderFactory: Factory;
      documentLoaderFactory: Factory;
    };
    const o = { allowPrivateAddress: true, userAgent: { url: 'http://a.example' } };
    assert.equal(impl.contextLoaderFactory(o), impl.contextLoaderFactory({ ...o }));
    assert.equal(impl.documentLoaderFactory(o), impl.documentLoaderFactory({ ...o }));
    assert.notEqual(
      impl.contextLoaderFactory(o),
      impl.contextLoaderFactory({ ...o, userAgent: { url: 'http://b.example' } }),
    );
  });

  it('tags the bundled ActivityStreams context static, and jsonld.js stops loading it', async () => {
    const { federation, loads } = federationWithSpy();
    const ctx = federation.createContext(new URL('http://gateway.example'), undefined);
    const doc = await ctx.contextLoader(AS);
    assert.equal((doc as { tag?: string }).tag, 'static');
    await Create.fromJsonLd(activity(1), ctx);
    loads.length = 0;
    for (let n = 2; n < 5; n++) {
      const create = await Create.fromJsonLd(activity(n), ctx);
      assert.equal(create.id?.href, `https://remote.example/activities/${n}`);
    }
    assert.deepEqual(
      loads.filter((u) => u === AS),
      [],
      'the context was loaded again after the first parse',
    );
  });

  it('refuses a federation without the factories it wraps', () => {
    assert.throws(() => wrapLoaders({} as never), /loader factories/);
  });
});
