// HS256 API tokens: a known vector whose MAC is computed here independently of signJwt, then the
// ways a token must be refused (forged, re-algorithmed, expired, malformed) without throwing.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type JwtClaims,
  JwtError,
  MAX_JWT_LENGTH,
  parseBearer,
  signJwt,
  verifyJwt,
} from '../../src/api/jwt.ts';

const key = new TextEncoder().encode('secret-key-for-tests-0123456789ab');
const claims: JwtClaims = { name: 'allow-x', role: 'node', allowGroup: 'x', exp: 4102444800 };
const NOW = 1_700_000_000;

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Builds a token by hand: any header and payload, MAC'd with HMAC-SHA256 under the key. */
function handMade(header: unknown, payload: unknown, macKey: Uint8Array = key): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', macKey).update(input).digest('base64url')}`;
}

const HS256 = { alg: 'HS256', typ: 'JWT' };

function reasonOf(token: string, now = NOW): string {
  const r = verifyJwt(token, key, now);
  assert.equal(r.ok, false, `expected ${JSON.stringify(token.slice(0, 60))} to be rejected`);
  return r.ok ? '' : r.reason;
}

describe('signJwt / verifyJwt', () => {
  it('round trips, with and without iat', () => {
    const r = verifyJwt(signJwt(claims, key), key, NOW);
    assert.deepEqual(r, { ok: true, claims });
    const withIat = { ...claims, role: 'chain' as const, allowGroup: '*', iat: NOW };
    assert.deepEqual(verifyJwt(signJwt(withIat, key), key, NOW), { ok: true, claims: withIat });
    const withJti = { ...withIat, jti: '7d2c6a1e-0b8f-4c55-9a43-1f6e2d8b9c10' };
    assert.deepEqual(verifyJwt(signJwt(withJti, key), key, NOW), { ok: true, claims: withJti });
  });

  it('matches the known vector and an independently computed HMAC', () => {
    const token = signJwt(claims, key);
    const [header, payload, signature] = token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(header!, 'base64url').toString()), HS256);
    assert.deepEqual(JSON.parse(Buffer.from(payload!, 'base64url').toString()), claims);
    assert.doesNotMatch(token, /[=+/]/);
    const mac = createHmac('sha256', Buffer.from('secret-key-for-tests-0123456789ab', 'utf8'))
      .update(`${header}.${payload}`)
      .digest('base64url');
    assert.equal(signature, mac);
    assert.equal(token, handMade(HS256, claims));
    assert.deepEqual(verifyJwt(token, key, NOW), { ok: true, claims });
    assert.equal(verifyJwt(token, key).ok, true); // against the clock: exp is in 2100
  });

  it('rejects a tampered payload, a wrong key and a tampered signature', () => {
    const [header, , signature] = signJwt(claims, key).split('.');
    const forged = `${header}.${b64url({ ...claims, allowGroup: '*' })}.${signature}`;
    assert.equal(reasonOf(forged), 'bad signature');
    assert.equal(
      reasonOf(handMade(HS256, claims, new TextEncoder().encode('other'))),
      'bad signature',
    );
    const token = signJwt(claims, key);
    const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
    assert.equal(reasonOf(flipped), 'bad signature');
    assert.equal(reasonOf(`${token.slice(0, token.lastIndexOf('.'))}.AAAA`), 'bad signature');
  });

  it('rejects a non-canonical spelling of the signature', () => {
    const token = signJwt(claims, key);
    // The last of 43 characters carries 4 signature bits and 2 padding bits that must be zero.
    const last = token.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const variant = `${token.slice(0, -1)}${alphabet[alphabet.indexOf(last) + 1]}`;
    assert.equal(reasonOf(variant), 'bad signature');
  });

  it("rejects alg 'none' and other algorithms, even when MAC'd with the key", () => {
    const payload = b64url(claims);
    assert.equal(
      reasonOf(`${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.`),
      'token is not three base64url parts',
    );
    assert.equal(reasonOf(`${b64url({ alg: 'none' })}.${payload}.AAAA`), 'unsupported alg');
    for (const alg of ['none', 'RS256', 'ES256', 'PS256', 'HS512', 'hs256', 'EdDSA']) {
      assert.equal(reasonOf(handMade({ alg, typ: 'JWT' }, claims)), 'unsupported alg', alg);
    }
    assert.equal(reasonOf(handMade({ typ: 'JWT' }, claims)), 'unsupported alg');
  });

  it('rejects expired tokens (exp <= now)', () => {
    const token = signJwt({ ...claims, exp: NOW }, key);
    assert.equal(reasonOf(token, NOW), 'token expired');
    assert.equal(reasonOf(token, NOW + 1), 'token expired');
    assert.equal(verifyJwt(token, key, NOW - 1).ok, true);
  });

  it('accepts legacy allowGroups and normalises it to its first element', () => {
    const { allowGroup: _, ...rest } = claims;
    const legacy = handMade(HS256, { ...rest, allowGroups: ['g1', 'g2'] });
    assert.deepEqual(verifyJwt(legacy, key, NOW), {
      ok: true,
      claims: { ...claims, allowGroup: 'g1' },
    });
    const chain = handMade(HS256, { name: 'c', role: 'chain', allowGroups: null, exp: claims.exp });
    assert.deepEqual(verifyJwt(chain, key, NOW), {
      ok: true,
      claims: { name: 'c', role: 'chain', allowGroup: '', exp: claims.exp },
    });
    assert.equal(
      reasonOf(handMade(HS256, { ...rest, allowGroups: [] })),
      'missing allowGroup claim',
    );
    assert.equal(
      reasonOf(handMade(HS256, { ...rest, allowGroups: [1] })),
      'invalid allowGroup claim',
    );
    assert.equal(
      reasonOf(handMade(HS256, { ...rest, allowGroups: 'g1' })),
      'invalid allowGroup claim',
    );
  });

  it('rejects missing or ill-typed claims, each with its own reason', () => {
    const cases: [unknown, string][] = [
      [{ ...claims, name: undefined }, 'invalid name claim'],
      [{ ...claims, name: 7 }, 'invalid name claim'],
      [{ ...claims, role: 'admin' }, 'invalid role claim'],
      [{ ...claims, role: undefined }, 'invalid role claim'],
      [{ ...claims, allowGroup: undefined }, 'missing allowGroup claim'],
      [{ ...claims, allowGroup: '' }, 'missing allowGroup claim'],
      [{ ...claims, allowGroup: ['x'] }, 'invalid allowGroup claim'],
      [{ ...claims, exp: undefined }, 'invalid exp claim'],
      [{ ...claims, exp: '4102444800' }, 'invalid exp claim'],
      [{ ...claims, iat: 'now' }, 'invalid iat claim'],
      [{ ...claims, jti: 7 }, 'invalid jti claim'],
      [[claims], 'invalid payload JSON'],
      [null, 'invalid payload JSON'],
    ];
    for (const [payload, reason] of cases) {
      assert.equal(reasonOf(handMade(HS256, payload)), reason, JSON.stringify(payload));
    }
    const input = `${b64url(HS256)}.${Buffer.from('{not json').toString('base64url')}`;
    const mac = createHmac('sha256', key).update(input).digest('base64url');
    assert.equal(reasonOf(`${input}.${mac}`), 'invalid payload JSON');
  });

  it('rejects garbage without throwing', () => {
    const garbage: [string, string][] = [
      ['', 'token is not three base64url parts'],
      ['a.b', 'token is not three base64url parts'],
      ['a.b.c.d', 'token is not three base64url parts'],
      ['..', 'token is not three base64url parts'],
      ['a b.c.d', 'token is not three base64url parts'],
      ['eyJ=.e30.AAAA', 'token is not three base64url parts'],
      ['a.b.c', 'invalid header JSON'],
      ['e30.e30.AAAA', 'unsupported alg'],
      [`${Buffer.from([0xff, 0xfe]).toString('base64url')}.e30.AAAA`, 'invalid header JSON'],
      [`${'a'.repeat(MAX_JWT_LENGTH)}.b.c`, 'token too long'],
      ['x'.repeat(1_000_000), 'token too long'],
    ];
    for (const [token, reason] of garbage) {
      assert.equal(reasonOf(token), reason, token.slice(0, 40));
    }
    assert.equal(verifyJwt(undefined as unknown as string, key, NOW).ok, false);
  });

  it('throws JwtError on an empty key, ill-typed claims or a bad clock', () => {
    assert.throws(() => signJwt(claims, new Uint8Array()), JwtError);
    assert.throws(() => verifyJwt('a.b.c', new Uint8Array()), JwtError);
    assert.throws(() => verifyJwt('a.b.c', key, Number.NaN), JwtError);
    assert.throws(() => signJwt({ ...claims, role: 'admin' as 'node' }, key), JwtError);
    assert.throws(() => signJwt({ ...claims, allowGroup: '' }, key), JwtError);
    assert.throws(() => signJwt({ ...claims, exp: Number.POSITIVE_INFINITY }, key), JwtError);
    assert.throws(() => signJwt({ ...claims, jti: 7 as unknown as string }, key), JwtError);
  });
});

describe('parseBearer', () => {
  it('extracts the token whatever the case of the scheme', () => {
    assert.equal(parseBearer('Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(parseBearer('bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(parseBearer('  BEARER   abc.def.ghi  '), 'abc.def.ghi');
  });

  it('returns null when there is no bearer token', () => {
    for (const h of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      'Basic dXNlcjpwYXNz',
      'Bearer a b',
      'abc.def.ghi',
    ]) {
      assert.equal(parseBearer(h), null, String(h));
    }
  });
});
