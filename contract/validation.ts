import type { z } from 'zod';

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
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    readonly subject: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(`invalid ${subject}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  }

  static fromZod(subject: string, error: z.ZodError): ValidationError {
    return new ValidationError(
      subject,
      error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
    );
  }
}

/** Parses with a schema, throwing a ValidationError that names every field and rule. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, subject: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw ValidationError.fromZod(subject, result.error);
  return result.data;
}
