import type { z } from 'zod';
import { SettleError } from './settle-error';

/** One line per problem, each naming the field path and the rule: `steps[1].after[0].step: unknown step "x" in after`. */
export function formatIssues(error: z.ZodError, root = ''): string {
  return error.issues.map((issue) => `${formatPath(issue.path, root)}: ${issue.message}`).join('\n');
}

export function formatPath(path: readonly PropertyKey[], root = ''): string {
  let text = root;
  for (const part of path) {
    if (typeof part === 'number') text += `[${part}]`;
    else text += text ? `.${String(part)}` : String(part);
  }
  return text || '(root)';
}

/** A typed validation failure whose message lists every issue with its field path. */
export class ValidationError extends SettleError {
  override name = 'ValidationError';
  constructor(
    readonly subject: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`invalid ${subject}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  }

  static fromZod(subject: string, error: z.ZodError, root = ''): ValidationError {
    return new ValidationError(
      subject,
      error.issues.map((issue) => ({ path: formatPath(issue.path, root), message: issue.message })),
    );
  }
}

/** How {@link parseOrThrow} reports a failure, when not as a plain ValidationError. */
export interface ParseOptions {
  /**
   * The class to throw instead of a ValidationError, so that a configuration error stays one. Its message reads
   * `invalid <subject>:` and then one `path: rule` line per issue.
   */
  error?: new (message: string) => Error;
  /** With `error`: what was read, written before that message (`cfg.json: invalid networks file: …`). */
  source?: string;
  /** The value's own name in field paths, when it is one field (`actionId`) rather than a document. */
  root?: string;
}

/**
 * Parses with a schema, throwing an error that names every field and rule: a ValidationError, or the class in
 * `options.error`.
 *
 * @example
 * const spec = parseOrThrow(ActionSpecSchema, json, 'ActionSpec');
 * const config = parseOrThrow(ApiConfigSchema, env, 'configuration', { error: ApiConfigError });
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  subject: string,
  options: ParseOptions = {},
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  if (!options.error) throw ValidationError.fromZod(subject, result.error, options.root);
  const source = options.source ? `${options.source}: ` : '';
  throw new options.error(`${source}invalid ${subject}:\n${formatIssues(result.error, options.root)}`);
}
