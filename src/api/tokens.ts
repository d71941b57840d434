/**
 * API tokens: HS256 JWTs as quorum issues them, listed in the database so they can be revoked.
 * The database keeps each token's SHA-256 and an id, never the token; the signing key lives in
 * the keystore. Neither is returned by any endpoint.
 */
import { randomBytes } from 'node:crypto';
import type { Keystore } from '../crypto/keystore.ts';
import { hashToken, newTokenId } from '../storage/api-tokens.ts';
import type { ChainStore, NewTokenRow, TokenRow } from '../storage/chain-store.ts';
import { type JwtClaims, type JwtResult, signJwt, verifyJwt } from './jwt.ts';

export const JWT_KEY_NAME = 'api-jwt-hs256';
const REFRESH_SECONDS = 30 * 24 * 3600;

export class TokenService {
  private readonly store: ChainStore;
  private readonly key: Uint8Array;

  private constructor(store: ChainStore, key: Uint8Array) {
    this.store = store;
    this.key = key;
  }

  static async open(store: ChainStore, keystore: Keystore): Promise<TokenService> {
    if (!keystore.has('secret', JWT_KEY_NAME)) {
      await keystore.put('secret', JWT_KEY_NAME, new Uint8Array(randomBytes(32)), '');
    }
    return new TokenService(store, keystore.get('secret', JWT_KEY_NAME));
  }

  /** Signs the claims with a new jti and builds the row that lists the token by its hash. */
  private issue(claims: Omit<JwtClaims, 'iat' | 'jti'>): { token: string; row: NewTokenRow } {
    const now = Math.floor(Date.now() / 1000);
    const id = newTokenId();
    const token = signJwt({ ...claims, iat: now, jti: id }, this.key);
    return {
      token,
      row: {
        tokenHash: hashToken(token),
        id,
        name: claims.name,
        role: claims.role,
        groupId: claims.allowGroup,
        expiresAt: claims.exp,
        createdAt: now,
      },
    };
  }

  create(claims: Omit<JwtClaims, 'iat' | 'jti'>): string {
    const { token, row } = this.issue(claims);
    this.store.insertToken(row);
    return token;
  }

  /** A token is valid when its signature and expiry check and it is listed and not revoked. */
  verify(token: string): JwtResult {
    const res = verifyJwt(token, this.key);
    if (!res.ok) return res;
    const row = this.store.getTokenByHash(hashToken(token));
    if (!row) return { ok: false, reason: 'token is not issued by this node' };
    if (row.revoked) return { ok: false, reason: 'token is revoked' };
    return res;
  }

  /** A new token with the same name, role and group, valid 30 days; the old one is revoked. */
  refresh(token: string): string {
    const res = this.verify(token);
    if (!res.ok) throw new Error(res.reason);
    const { name, role, allowGroup } = res.claims;
    const next = this.issue({
      name,
      role,
      allowGroup,
      exp: Math.floor(Date.now() / 1000) + REFRESH_SECONDS,
    });
    if (!this.store.replaceToken(hashToken(token), next.row)) throw new Error('token is revoked');
    return next.token;
  }

  /** Revokes a token given the token itself (as quorum does) or its id from the token list. */
  revoke(tokenOrId: string): boolean {
    return this.store.revokeToken(hashToken(tokenOrId), tokenOrId);
  }

  list(): TokenRow[] {
    return this.store.listTokens();
  }
}
