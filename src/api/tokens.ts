/**
 * API tokens: HS256 JWTs as quorum issues them, listed in the database so they can be revoked.
 * The signing key lives in the keystore and is never returned by any endpoint.
 */
import { randomBytes } from 'node:crypto';
import type { Keystore } from '../crypto/keystore.ts';
import type { ChainStore, TokenRow } from '../storage/chain-store.ts';
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

  create(claims: Omit<JwtClaims, 'iat'>): string {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({ ...claims, iat: now }, this.key);
    this.store.insertToken({
      token,
      name: claims.name,
      role: claims.role,
      groupId: claims.allowGroup,
      expiresAt: claims.exp,
      createdAt: now,
    });
    return token;
  }

  /** A token is valid when its signature and expiry check and it is listed and not revoked. */
  verify(token: string): JwtResult {
    const res = verifyJwt(token, this.key);
    if (!res.ok) return res;
    const row = this.store.getToken(token);
    if (!row) return { ok: false, reason: 'token is not issued by this node' };
    if (row.revoked) return { ok: false, reason: 'token is revoked' };
    return res;
  }

  refresh(token: string): string {
    const res = this.verify(token);
    if (!res.ok) throw new Error(res.reason);
    const { name, role, allowGroup } = res.claims;
    return this.create({
      name,
      role,
      allowGroup,
      exp: Math.floor(Date.now() / 1000) + REFRESH_SECONDS,
    });
  }

  revoke(token: string): boolean {
    return this.store.revokeToken(token);
  }

  list(): TokenRow[] {
    return this.store.listTokens();
  }
}
