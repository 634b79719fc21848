import type { BlockRef, StepOutput } from './primitives';

/** What an operation's `{{…}}` templates may read: the action id and what earlier steps produced. */
export interface TemplateContext {
  actionId: string;
  steps: Record<string, { ref?: string; block?: BlockRef; output?: StepOutput }>;
}
