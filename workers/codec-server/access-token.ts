/**
 * Verifies the Web UI users' access tokens: with "Pass the user access token" on, the UI sends the signed-in user's
 * OIDC access token (a JWT) as `Authorization: Bearer …`. A token is accepted when a key of the identity provider's
 * JWKS signed it (RS256 or ES256 only), it names the configured issuer and audience, and it is within its lifetime.
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SettleError } from '../../contract/errors';

export class AccessTokenError extends SettleError {
  override name = 'AccessTokenError';
}

export interface AccessTokenPolicy {
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** How far the clocks may disagree on `exp` and `nbf`, in seconds (default 60). */
  clockSkewSeconds?: number;
}

/** The claims of a verified token that the server records (who decoded). */
export interface VerifiedToken {
  subject?: string;
}

type Jwk = JsonWebKey & { kid?: string; alg?: string; use?: string };
export type FetchJwks = (url: string) => Promise<{ keys: Jwk[] }>;

/** The algorithms a token may name: asymmetric only (never `none`, never HMAC: a JWKS holds public keys). */
const ALGORITHMS = new Map<string, { keyType: 'rsa' | 'ec'; curve?: string }>([
  ['RS256', { keyType: 'rsa' }],
  ['ES256', { keyType: 'ec', curve: 'prime256v1' }],
]);
const MIN_RSA_BITS = 2048;
/** The JWKS is read again after this long, or sooner when a token names a key it does not hold (at most every 30 s). */
const JWKS_MAX_AGE_MS = 10 * 60_000;
const JWKS_MIN_REFRESH_MS = 30_000;

/**
 * @example
 * const verifier = new AccessTokenVerifier({ jwksUrl, issuer: 'https://login.example.com/', audience: 'temporal-ui' });
 * const { subject } = await verifier.verify(token);
 */
export class AccessTokenVerifier {
  private keys: Jwk[] = [];
  /** When the JWKS was last read, and last tried. */
  private readAt = -Infinity;
  private triedAt = -Infinity;
  private reading?: Promise<void>;

  constructor(
    private readonly policy: AccessTokenPolicy,
    private readonly fetchJwks: FetchJwks = fetchJwksOverHttp,
    private readonly now: () => number = Date.now,
  ) {}

  /** @throws AccessTokenError naming what failed (never echoing the token) */
  async verify(token: string): Promise<VerifiedToken> {
    const parts = token.split('.');
    if (parts.length !== 3) throw new AccessTokenError('not a JWT');
    const header = decodeJson(parts[0], 'header') as { alg?: unknown; kid?: unknown };
    const claims = decodeJson(parts[1], 'claims') as Record<string, unknown>;
    const algorithm = typeof header.alg === 'string' ? ALGORITHMS.get(header.alg) : undefined;
    if (!algorithm) throw new AccessTokenError(`algorithm ${String(header.alg)} is not accepted (RS256, ES256)`);
    const key = await this.keyFor(typeof header.kid === 'string' ? header.kid : undefined, header.alg as string);
    const details = key.asymmetricKeyDetails ?? {};
    const fits =
      key.asymmetricKeyType === algorithm.keyType &&
      (algorithm.keyType === 'ec'
        ? details.namedCurve === algorithm.curve
        : (details.modulusLength ?? 0) >= MIN_RSA_BITS);
    if (!fits) throw new AccessTokenError('the key does not fit the algorithm');
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2], 'base64url');
    const valid =
      algorithm.keyType === 'ec'
        ? verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)
        : verify('sha256', signed, key, signature);
    if (!valid) throw new AccessTokenError('bad signature');
    this.checkClaims(claims);
    return typeof claims.sub === 'string' ? { subject: claims.sub } : {};
  }

  private checkClaims(claims: Record<string, unknown>): void {
    const now = this.now() / 1000;
    const skew = this.policy.clockSkewSeconds ?? 60;
    if (typeof claims.exp !== 'number') throw new AccessTokenError('the token has no expiry');
    if (now > claims.exp + skew) throw new AccessTokenError('the token has expired');
    if (typeof claims.nbf === 'number' && now < claims.nbf - skew)
      throw new AccessTokenError('the token is not valid yet');
    if (claims.iss !== this.policy.issuer) throw new AccessTokenError('the token is from another issuer');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.policy.audience)) throw new AccessTokenError('the token is for another audience');
  }

  private async keyFor(kid: string | undefined, alg: string): Promise<KeyObject> {
    const stale = this.now() - this.readAt > JWKS_MAX_AGE_MS;
    if ((stale || !this.find(kid, alg)) && this.now() - this.triedAt > JWKS_MIN_REFRESH_MS) await this.readKeys();
    const jwk = this.find(kid, alg);
    if (!jwk) {
      if (this.readAt === -Infinity) throw new AccessTokenError('the JWKS could not be read');
      throw new AccessTokenError(`no signing key ${kid ? `"${kid}"` : 'without an id'} in the JWKS`);
    }
    try {
      return createPublicKey({ key: jwk, format: 'jwk' });
    } catch {
      throw new AccessTokenError('the JWKS key is not a public key');
    }
  }

  /** The key the token names; a token without `kid` is accepted only when the JWKS holds a single fitting key. */
  private find(kid: string | undefined, alg: string): Jwk | undefined {
    const fitting = this.keys.filter((key) => (key.use ?? 'sig') === 'sig' && (key.alg ?? alg) === alg);
    if (kid !== undefined) return fitting.find((key) => key.kid === kid);
    return fitting.length === 1 ? fitting[0] : undefined;
  }

  /** Reads the JWKS (one read at a time); on failure the keys read before still verify. */
  private async readKeys(): Promise<void> {
    this.reading ??= this.readKeysOnce().finally(() => (this.reading = undefined));
    await this.reading;
  }

  private async readKeysOnce(): Promise<void> {
    this.triedAt = this.now();
    try {
      const jwks = await this.fetchJwks(this.policy.jwksUrl);
      if (!Array.isArray(jwks?.keys)) return;
      this.keys = jwks.keys;
      this.readAt = this.now();
    } catch {
      // Kept as it was: a token whose key is missing is refused.
    }
  }
}

function decodeJson(part: string, what: string): unknown {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  } catch {
    // fall through: the message must not quote the token
  }
  throw new AccessTokenError(`the token's ${what} is not a JSON object`);
}

async function fetchJwksOverHttp(url: string): Promise<{ keys: Jwk[] }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000), headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as { keys: Jwk[] };
}
