/**
 * Fedify's document and context loaders, made once instead of at every request, and the
 * contexts Fedify bundles (ActivityStreams, the security vocabularies, …) tagged `static`.
 *
 * jsonld.js keeps a remote context it has processed across operations only when its loader tags
 * it `static`; Fedify's loaders answer the bundled contexts untagged, so every parse of an
 * activity or of a cached key loaded the context again, serialized it and walked it: with the
 * loaders Fedify builds per request (a URL pattern and durations each), a sixth of the time of an
 * inbox POST. The bundled contexts are part of the installed package and never change.
 *
 * Fedify has no option for this when `allowPrivateAddress` or `userAgent` is set (it refuses
 * loader factories then), so the federation's own factories are wrapped. They are internal
 * properties of Fedify's FederationImpl: wrapLoaders throws if they are not there, so an upgrade
 * that moves them fails loudly (test/bridges/activitypub/loaders.test.ts) instead of quietly
 * losing the speed.
 */
import type { Federation } from '@fedify/fedify';
import { preloadedContexts } from '@fedify/vocab-runtime';

type Loader = (url: string, options?: unknown) => Promise<Record<string, unknown>>;
type LoaderFactory = (options?: unknown) => Loader;

interface FederationLoaders {
  documentLoaderFactory: LoaderFactory;
  contextLoaderFactory: LoaderFactory;
}

/** At most this many loaders per factory (one per origin the gateway answers under). */
const MAX_LOADERS = 16;

function memoized(factory: LoaderFactory, wrap: (l: Loader) => Loader = (l) => l): LoaderFactory {
  const made = new Map<string, Loader>();
  return (options) => {
    const key = JSON.stringify(options ?? null);
    let loader = made.get(key);
    if (!loader) {
      if (made.size >= MAX_LOADERS) made.clear();
      loader = wrap(factory(options));
      made.set(key, loader);
    }
    return loader;
  };
}

function tagBundled(load: Loader): Loader {
  return async (url, options) => {
    const doc = await load(url, options);
    return Object.hasOwn(preloadedContexts, url) ? { ...doc, tag: 'static' } : doc;
  };
}

export function wrapLoaders(federation: Federation<void>): void {
  const impl = federation as unknown as Partial<FederationLoaders>;
  const { documentLoaderFactory, contextLoaderFactory } = impl;
  if (typeof documentLoaderFactory !== 'function' || typeof contextLoaderFactory !== 'function') {
    throw new Error("Fedify's federation has no loader factories where this bridge expects them");
  }
  impl.documentLoaderFactory = memoized(documentLoaderFactory.bind(impl));
  impl.contextLoaderFactory = memoized(contextLoaderFactory.bind(impl), tagBundled);
}
