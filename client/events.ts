/** Transitions as events (SSE, `status --watch`, webhooks): the workflow's notification outbox uses the same code. */
export * from '../contract/transition-events';
