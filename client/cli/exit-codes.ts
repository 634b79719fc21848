/**
 * Exit codes of the `settle` CLI, for scripts. Stable: part of the CLI's contract.
 *
 * | code | meaning |
 * | ---- | ------- |
 * | 0 | done (`status --watch`: the action completed) |
 * | 1 | unexpected error |
 * | 2 | usage: unknown command or option, missing argument |
 * | 3 | invalid input (spec, evidence, update): the message names each field and rule; nothing was started or sent |
 * | 4 | not found: no action with that id, or no action has that ref |
 * | 5 | rejected: the workflow refused the update (unknown step, illegal state), or the action is closed |
 * | 6 | unavailable: Temporal could not be reached, or the configuration is invalid |
 * | 7 | `status --watch`: the action ended without completing (failed, compensated or cancelled) |
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalid: 3,
  notFound: 4,
  rejected: 5,
  unavailable: 6,
  notCompleted: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
