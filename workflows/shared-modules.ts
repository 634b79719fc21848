/**
 * The modules every workflow of a worker shares: loaded once when the worker's reusable V8 context starts (the bundle
 * option `preloadModules`, see workers/worker/bundle.ts), instead of once per workflow. Without this, each cached
 * workflow evaluated zod, the contract's schemas and the machine again in a module cache of its own (about 1.2 MB of
 * heap per workflow before it ran a single step, and more as zod compiled its parsers per workflow).
 *
 * What may be listed: modules whose module scope needs no workflow (no `workflowInfo()`, no clock, no activities) and
 * that keep no per-workflow state at module level. Everything they import is shared too (zod, @noble/curves), so
 * `contract/messages.ts` (it imports `@temporalio/workflow`) stays out.
 *
 * The SDK deep-freezes shared modules once they are loaded, but a frozen zod 4 schema cannot parse: zod installs a
 * schema's methods on first use (`parse`, `safeParse`, `optional`, … as own properties) and resets a regex check's
 * `lastIndex` before every test. So each module listed here has its exports frozen now, shallowly: exports cannot be
 * reassigned, and the SDK's deep freeze, which stops at an object already frozen, leaves the schemas inside mutable.
 * What zod then writes into a shared schema is its own caches, computed from the schema alone: the same in every
 * workflow. zod's own modules are deep-frozen as the SDK does; `z.config` (contract/primitives.ts) runs before that.
 */
import * as actionSpec from '../contract/action-spec';
import * as activityIo from '../contract/activity-io';
import * as contractClaims from '../contract/claims';
import * as duration from '../contract/duration';
import * as errors from '../contract/errors';
import * as evidence from '../contract/evidence';
import * as primitives from '../contract/primitives';
import * as searchAttributes from '../contract/search-attributes';
import * as settleError from '../contract/settle-error';
import * as status from '../contract/status';
import * as templates from '../contract/templates';
import * as transitionEvents from '../contract/transition-events';
import * as updates from '../contract/updates';
import * as validation from '../contract/validation';
import * as action from './machine/action';
import * as machineClaims from './machine/claims';
import * as compensation from './machine/compensation';
import * as exactlyOnce from './machine/exactly-once';
import * as nonceBook from './machine/nonce-book';
import * as phase from './machine/phase';
import * as step from './machine/step';
import * as track from './machine/track';
import * as updateValidators from './machine/update-validators';
import * as views from './machine/views';

// Frozen here, shallowly: the SDK's deep freeze stops at a frozen object, so it leaves the schemas inside alone.
for (const exports of [
  actionSpec,
  activityIo,
  contractClaims,
  duration,
  errors,
  evidence,
  primitives,
  searchAttributes,
  settleError,
  status,
  templates,
  transitionEvents,
  updates,
  validation,
  action,
  machineClaims,
  compensation,
  exactlyOnce,
  nonceBook,
  phase,
  step,
  track,
  updateValidators,
  views,
])
  Object.freeze(exports);
