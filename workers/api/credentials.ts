/**
 * Who may call the HTTP API, and for what. A credential is a named bearer token with scopes, or a named evidence key
 * (HMAC) whose only scope is `evidence`. Tokens are kept as SHA-256 digests and compared in constant time; the name,
 * never the token, is what logs and the audit trail carry.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { KEY_ID_PATTERN } from '../../networks/webhook/signature';

export const ScopeSchema = z.enum(['read', 'start', 'operate', 'evidence']);
/** `read`: status, list, refs, events · `start` · `operate`: retry, compensate, cancel, resolve · `evidence`. */
export type Scope = z.infer<typeof ScopeSchema>;
export const ALL_SCOPES: readonly Scope[] = ScopeSchema.options;

/** The credential of `SETTLE_API_TOKEN` and of `SETTLE_EVIDENCE_SECRET`, the single-secret forms. */
export const DEFAULT_CREDENTIAL = 'default';
/** Every request acts as this credential under `SETTLE_API_INSECURE_NO_AUTH=1`, so the audit trail says so. */
export const INSECURE_CREDENTIAL = 'insecure-no-auth';

/** A credential name: the same rule as a key id (no ":", so `<name>:<detail>` always names who acted). */
export const CredentialNameSchema = z
  .string()
  .regex(KEY_ID_PATTERN, 'must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');

const TokenEntrySchema = z
  .strictObject({
    /** The token itself (at least 16 characters; 32 random bytes is better). */
    token: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Or its SHA-256, hex: the file then holds no secret. */
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
      .optional(),
    scopes: z.array(ScopeSchema).min(1, 'must grant at least one scope'),
    /** Requests per rate window for this credential, instead of SETTLE_API_RATE_LIMIT. */
    rateLimit: z.number().int().positive().optional(),
  })
  .refine((entry) => (entry.token === undefined) !== (entry.sha256 === undefined), 'give either token or sha256');

/** Object keys that are credential names, each refused with the rule when it is not one. */
function namedRecord<T extends z.ZodType>(entry: T) {
  return z.record(z.string(), entry).superRefine((record, ctx) => {
    for (const name of Object.keys(record)) {
      const checked = CredentialNameSchema.safeParse(name);
      if (!checked.success) ctx.addIssue({ code: 'custom', path: [name], message: checked.error.issues[0].message });
    }
  });
}

/** `SETTLE_API_TOKENS`: name → { token | sha256, scopes, rateLimit? }. */
export const TokensSchema = namedRecord(TokenEntrySchema);
/** `SETTLE_EVIDENCE_KEYS`: key id → secret, or several secrets while rotating. */
export const EvidenceKeysSchema = namedRecord(
  z
    .union([z.string(), z.array(z.string()).min(1, 'must hold a secret')])
    .transform((secrets) => [secrets].flat())
    .pipe(z.array(z.string().min(16, 'each secret must be at least 16 characters'))),
);

/** A value given inline as a JSON object, or as the path of a JSON file (so secrets can live in a mounted file). */
export function jsonOrFile<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx) => {
      const inline = text.trim().startsWith('{');
      try {
        return JSON.parse(inline ? text : readFileSync(text.trim(), 'utf8')) as unknown;
      } catch (error) {
        const what = inline ? 'not JSON' : `cannot read the JSON file ${JSON.stringify(text.trim())}`;
        ctx.addIssue({ code: 'custom', message: `${what}: ${(error as Error).message}` });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

export interface Credential {
  kind: 'token' | 'evidence-key' | 'insecure';
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Requests per rate window, when this credential has its own limit. */
  rateLimit?: number;
}

/** The key a credential is counted under (rate limits, event streams): a token and a key may share a name. */
export function credentialKey(credential: Credential): string {
  return `${credential.kind}:${credential.name}`;
}

/**
 * A name from a request body, scoped under the credential that sent it: `alice` sent with the token `ops` is recorded
 * as `ops:alice`; a name already under it (`ops`, `ops:alice`) stays; none gives the credential's name. So the part
 * before the first ":" always names the credential that acted, whatever the body says.
 */
export function scopedName(credential: Credential, claimed: unknown): string {
  if (typeof claimed !== 'string' || claimed.trim() === '') return credential.name;
  const name = claimed.trim();
  return name === credential.name || name.startsWith(`${credential.name}:`) ? name : `${credential.name}:${name}`;
}

interface TokenRecord {
  credential: Credential;
  digest: Buffer;
}

/** The bearer tokens, by digest. */
export class TokenTable {
  private readonly records: TokenRecord[];

  constructor(tokens: z.output<typeof TokensSchema>) {
    this.records = Object.entries(tokens).map(([name, entry]) => ({
      credential: { kind: 'token', name, scopes: new Set(entry.scopes), rateLimit: entry.rateLimit },
      digest: entry.token !== undefined ? sha256(entry.token) : Buffer.from(entry.sha256!, 'hex'),
    }));
  }

  get size(): number {
    return this.records.length;
  }

  /** Each token's name and scopes, for the start-up line (never the token). */
  names(): { name: string; scopes: Scope[] }[] {
    return this.records.map(({ credential }) => ({ name: credential.name, scopes: [...credential.scopes] }));
  }

  /** Names that share a token: two names for one secret would make the audit trail guess. */
  duplicates(): string[] {
    const seen = new Map<string, string>();
    const duplicated: string[] = [];
    for (const { credential, digest } of this.records) {
      const other = seen.get(digest.toString('hex'));
      if (other) duplicated.push(`${other} and ${credential.name}`);
      else seen.set(digest.toString('hex'), credential.name);
    }
    return duplicated;
  }

  /** The credential whose token this is. Compares digests in constant time, against every record. */
  match(token: string): Credential | undefined {
    const digest = sha256(token);
    let found: Credential | undefined;
    for (const record of this.records) {
      if (timingSafeEqual(digest, record.digest) && !found) found = record.credential;
    }
    return found;
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Everything the API authenticates with, merged from the configuration. */
export interface Access {
  tokens: TokenTable;
  /** Evidence key id → its secrets. */
  evidenceKeys: ReadonlyMap<string, readonly string[]>;
  /** Set only under `SETTLE_API_INSECURE_NO_AUTH=1`: every request acts as it. */
  anonymous?: Credential;
}

export function evidenceKeyCredential(keyId: string): Credential {
  return { kind: 'evidence-key', name: keyId, scopes: new Set(['evidence']) };
}

export const insecureCredential: Credential = {
  kind: 'insecure',
  name: INSECURE_CREDENTIAL,
  scopes: new Set(ALL_SCOPES),
};
