/**
 * The API tokens of quorum: HS256 JSON Web Tokens (RFC 7519) whose claims name the holder, its
 * role ('chain' for the chain API, 'node' for a light node's access to one group) and the group
 * it may use ('*' for all); this node also gives each token a `jti` (RFC 7519 §4.1.7), the id its
 * token list shows. Older quorum tokens carried `allowGroups: string[]` instead of
 * `allowGroup`; they are accepted and normalised to their first element.
 *
 * Only HS256 is accepted: the algorithm named in the header is checked before anything else, so
 * 'none' and public-key algorithms (RS*, ES*, PS*, EdDSA) can never select how a token is
 * checked. The payload is parsed only after its signature has been verified.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { toBase64Url, utf8Bytes } from '../crypto/encoding.ts';

export class JwtError extends Error {
  override name = 'JwtError';
}

export type JwtRole = 'chain' | 'node';

export interface JwtClaims {
  name: string;
  role: JwtRole;
  /** A group id, or '*' for every group; '' on a chain token that names no group. */
  allowGroup: string;
  /** Expiry, in seconds since the epoch. */
  exp: number;
  /** Issue time, in seconds since the epoch. */
  iat?: number;
  /** Token id; absent from quorum's tokens. */
  jti?: string;
}

export type JwtResult = { ok: true; claims: JwtClaims } | { ok: false; reason: string };

/** Longer tokens are rejected before any decoding. */
export const MAX_JWT_LENGTH = 8192;

const HMAC_SHA256_BYTES = 32;
const HEADER = toBase64Url(utf8Bytes(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function hmac(key: Uint8Array, signingInput: string): Buffer {
  return createHmac('sha256', key).update(signingInput, 'utf8').digest();
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length === 0) {
    throw new JwtError('JWT key must be a non-empty Uint8Array');
  }
}

function isRole(role: unknown): role is JwtRole {
  return role === 'chain' || role === 'node';
}

function isTime(t: unknown): t is number {
  return typeof t === 'number' && Number.isFinite(t) && t >= 0;
}

/** Signs claims with HS256; throws JwtError on an empty key or ill-typed claims. */
export function signJwt(claims: JwtClaims, key: Uint8Array): string {
  checkKey(key);
  if (typeof claims?.name !== 'string') throw new JwtError('claim name must be a string');
  if (!isRole(claims.role)) throw new JwtError("claim role must be 'chain' or 'node'");
  if (typeof claims.allowGroup !== 'string')
    throw new JwtError('claim allowGroup must be a string');
  if (claims.role === 'node' && claims.allowGroup === '') {
    throw new JwtError('a node token needs allowGroup');
  }
  if (!isTime(claims.exp)) throw new JwtError('claim exp must be a time in seconds');
  if (claims.iat !== undefined && !isTime(claims.iat)) {
    throw new JwtError('claim iat must be a time in seconds');
  }
  if (claims.jti !== undefined && typeof claims.jti !== 'string') {
    throw new JwtError('claim jti must be a string');
  }
  const body: Record<string, unknown> = {
    name: claims.name,
    role: claims.role,
    allowGroup: claims.allowGroup,
    exp: claims.exp,
  };
  if (claims.iat !== undefined) body.iat = claims.iat;
  if (claims.jti !== undefined) body.jti = claims.jti;
  const signingInput = `${HEADER}.${toBase64Url(utf8Bytes(JSON.stringify(body)))}`;
  return `${signingInput}.${toBase64Url(hmac(key, signingInput))}`;
}

/** Decodes one base64url part into a JSON object; null when it is not one. */
function decodeJsonObject(part: string): Record<string, unknown> | null {
  if (part.length % 4 === 1) return null;
  try {
    const value: unknown = JSON.parse(utf8Decoder.decode(Buffer.from(part, 'base64url')));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
    return value as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Normalises allowGroup / legacy allowGroups; null when ill-typed. */
function allowGroupOf(payload: Record<string, unknown>): string | null {
  const { allowGroup, allowGroups } = payload;
  if (allowGroup !== undefined) return typeof allowGroup === 'string' ? allowGroup : null;
  if (allowGroups === undefined || allowGroups === null) return '';
  if (!Array.isArray(allowGroups) || !allowGroups.every((g) => typeof g === 'string')) return null;
  return allowGroups[0] ?? '';
}

/**
 * Verifies an HS256 token under the key and checks its claims. Every malformed, forged or
 * expired token is an `{ ok: false, reason }`; only an empty key or a non-finite nowSeconds
 * throws.
 */
export function verifyJwt(token: string, key: Uint8Array, nowSeconds?: number): JwtResult {
  checkKey(key);
  const now = nowSeconds ?? Math.floor(Date.now() / 1000);
  if (!Number.isFinite(now)) throw new JwtError('nowSeconds must be a finite number');
  if (typeof token !== 'string') return { ok: false, reason: 'token is not a string' };
  if (token.length > MAX_JWT_LENGTH) return { ok: false, reason: 'token too long' };
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => BASE64URL.test(p))) {
    return { ok: false, reason: 'token is not three base64url parts' };
  }
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

  const header = decodeJsonObject(headerPart);
  if (!header) return { ok: false, reason: 'invalid header JSON' };
  if (header.alg !== 'HS256') return { ok: false, reason: 'unsupported alg' };

  // Only the canonical encoding of a 32-byte MAC is accepted, so a token has one spelling.
  const signature = Buffer.from(signaturePart, 'base64url');
  const expected = hmac(key, `${headerPart}.${payloadPart}`);
  if (
    signature.length !== HMAC_SHA256_BYTES ||
    signature.toString('base64url') !== signaturePart ||
    !timingSafeEqual(signature, expected)
  ) {
    return { ok: false, reason: 'bad signature' };
  }

  const payload = decodeJsonObject(payloadPart);
  if (!payload) return { ok: false, reason: 'invalid payload JSON' };
  const { name, role, exp, iat, jti } = payload;
  if (typeof name !== 'string') return { ok: false, reason: 'invalid name claim' };
  if (!isRole(role)) return { ok: false, reason: 'invalid role claim' };
  const allowGroup = allowGroupOf(payload);
  if (allowGroup === null) return { ok: false, reason: 'invalid allowGroup claim' };
  if (role === 'node' && allowGroup === '')
    return { ok: false, reason: 'missing allowGroup claim' };
  if (!isTime(exp)) return { ok: false, reason: 'invalid exp claim' };
  if (iat !== undefined && !isTime(iat)) return { ok: false, reason: 'invalid iat claim' };
  if (jti !== undefined && typeof jti !== 'string')
    return { ok: false, reason: 'invalid jti claim' };
  if (exp <= now) return { ok: false, reason: 'token expired' };

  const claims: JwtClaims = { name, role, allowGroup, exp };
  if (iat !== undefined) claims.iat = iat;
  if (jti !== undefined) claims.jti = jti;
  return { ok: true, claims };
}

/** The token of an `Authorization: Bearer <jwt>` header; null when there is none. */
export function parseBearer(header: string | undefined): string | null {
  if (typeof header !== 'string') return null;
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? null;
}
