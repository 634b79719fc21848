/** The OpenAPI 3.1 document served at `/openapi.json`; its schemas come from the same zod schemas the API enforces. */
import { z } from 'zod';
import { ActionSpecSchema, OperationArgSchema } from '../../contract/action-spec';
import { EvidenceSchema } from '../../contract/evidence';
import { JsonValueSchema } from '../../contract/primitives';
import { ActionStatusSchema, PhaseSchema } from '../../contract/status';
import {
  CancelInputSchema,
  CompensateInputSchema,
  ResolveStepInputSchema,
  RetryStepInputSchema,
} from '../../contract/updates';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'the actionId' };

/** What every route but /healthz may answer before it runs: the front door (workers/api/guard.ts). */
const refusals = {
  '401': error('no credential, or a wrong one; nothing was read or changed'),
  '403': error("the credential lacks the route's scope; nothing was read or changed"),
  '421': error('the Host header names a host this API does not answer for (SETTLE_API_HOSTS)'),
  '429': error("the credential's rate limit (or, for events, its number of open streams) is reached"),
  '504': error(
    "no answer in time (SETTLE_API_REQUEST_TIMEOUT); the request may still take effect: read the action's status",
  ),
};
/** A bearer token (SETTLE_API_TOKENS) with this scope. */
const bearer = (scope: string) => [{ bearerToken: [scope] }];

const operatorUpdate = (summary: string, input: string) => ({
  summary,
  description:
    "The operator recorded in the audit trail is the token's name, with the body's `operator` after it (`ops:alice`).",
  security: bearer('operate'),
  parameters: [idParam],
  requestBody: { required: true, content: json(ref(input)) },
  responses: {
    '200': { description: 'the ActionStatus after the update', content: json(ref('ActionStatus')) },
    '400': error('invalid input (issues name each field and rule)'),
    '404': error('unknown action'),
    '409': error("the workflow's validator refused the update (unknown step, illegal state), or the action is closed"),
    ...refusals,
  },
});

const paths = {
  '/openapi.json': {
    get: {
      summary: 'This document',
      security: bearer('read'),
      responses: { '200': { description: 'OpenAPI 3.1' }, ...refusals },
    },
  },
  '/healthz': {
    get: {
      summary: 'Liveness (no credential needed)',
      security: [],
      responses: { '200': { description: 'the API is up' }, '421': refusals['421'] },
    },
  },
  '/v1/actions': {
    post: {
      summary: 'Start an action (idempotent by actionId)',
      security: bearer('start'),
      requestBody: { required: true, content: json(ref('ActionSpec')) },
      responses: {
        '201': { description: 'started', content: json(ref('StartedAction')) },
        '200': {
          description: 'an action with this actionId already existed; nothing new started',
          content: json(ref('StartedAction')),
        },
        '400': error('invalid spec; nothing started (at most 20 issues, long texts cut)'),
        ...refusals,
      },
    },
    get: {
      summary: 'List actions through visibility (eventually consistent), newest first',
      security: bearer('read'),
      parameters: [
        { name: 'phase', in: 'query', schema: { type: 'string', enum: PhaseSchema.options } },
        { name: 'network', in: 'query', schema: { type: 'string' } },
        { name: 'type', in: 'query', schema: { type: 'string' } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      ],
      responses: {
        '200': {
          description: 'matching actions',
          content: json({ type: 'object', properties: { actions: { type: 'array', items: ref('ActionSummary') } } }),
        },
        '400': error('invalid filter'),
        ...refusals,
      },
    },
  },
  '/v1/actions/{id}': {
    get: {
      summary: "An action's status: phase, local and global progress, steps and their transitions",
      security: bearer('read'),
      parameters: [idParam],
      responses: {
        '200': { description: 'status', content: json(ref('ActionStatus')) },
        '404': error('unknown action'),
        ...refusals,
      },
    },
  },
  '/v1/refs/{ref}': {
    get: {
      summary: 'Find the action(s) that had this transaction hash or reference',
      security: bearer('read'),
      parameters: [{ name: 'ref', in: 'path', required: true, schema: { type: 'string' } }],
      responses: {
        '200': {
          description: 'actions with this ref',
          content: json({
            type: 'object',
            properties: { ref: { type: 'string' }, actions: { type: 'array', items: ref('ActionSummary') } },
          }),
        },
        '404': error('no action has this ref (yet: visibility is eventually consistent)'),
        ...refusals,
      },
    },
  },
  '/v1/actions/{id}/events': {
    get: {
      summary: 'Every transition as Server-Sent Events, in order',
      description:
        'Sends the transitions that already happened, then each new one as it happens (`event: transition`, `id` = its sequence, data = a TransitionEvent), then `event: end` once the action has ended.',
      security: bearer('read'),
      parameters: [idParam],
      responses: {
        '200': { description: 'an event stream', content: { 'text/event-stream': { schema: ref('TransitionEvent') } } },
        '404': error('unknown action'),
        ...refusals,
      },
    },
  },
  '/v1/actions/{id}/evidence': {
    post: {
      summary: 'Deliver evidence about a step (external watchers), signed with an evidence key',
      description:
        'Header `settle-signature: t=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256 of "<t>.<actionId>.<raw body>">` ' +
        '(`signEvidence` in the client), with a key of SETTLE_EVIDENCE_KEYS; accepted once, within the replay window, ' +
        'by this process, and applied once by the action whichever process takes it (the MAC is its delivery `id`); ' +
        'for this action only. Or a bearer token with the `evidence` scope. The recorded `source` is the key id (or ' +
        "the token's name), with the body's `source`, if any, after it: `attester:eu-1`.",
      security: [{ evidenceSignature: [] }, { bearerToken: ['evidence'] }],
      parameters: [idParam],
      requestBody: { required: true, content: json(ref('Evidence')) },
      responses: {
        '202': { description: 'delivered to the action (the workflow applies it)' },
        '400': error('invalid evidence; nothing delivered'),
        '404': error('unknown action'),
        '409': error('the action is closed'),
        ...refusals,
        '401': error(
          'missing, malformed, unknown-key, wrong, stale, replayed or other-action signature; nothing applied',
        ),
      },
    },
  },
  '/v1/actions/{id}/retry': { post: operatorUpdate('A failed or expired step gets a new attempt', 'RetryStepInput') },
  '/v1/actions/{id}/compensate': { post: operatorUpdate('Compensate now whatever effects exist', 'CompensateInput') },
  '/v1/actions/{id}/cancel': {
    post: operatorUpdate('Before any effect: stop; after: as compensate', 'CancelInput'),
  },
  '/v1/actions/{id}/resolve': {
    post: operatorUpdate('Operator-supplied evidence for a step, with operator and reason', 'ResolveStepInput'),
  },
};

let document: object | undefined;

export function openApiDocument(): object {
  document ??= {
    openapi: '3.1.0',
    info: { title: 'Settle', version: '1', description: 'Durable multi-network actions on Temporal' },
    paths,
    components: {
      securitySchemes: {
        bearerToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A named token of SETTLE_API_TOKENS (or SETTLE_API_TOKEN, "default", every scope); each route lists the scope it needs: read, start, operate or evidence',
        },
        evidenceSignature: {
          type: 'apiKey',
          in: 'header',
          name: 'settle-signature',
          description: 't=<unix seconds>,kid=<key id>,v1=<hex HMAC-SHA256 of "<t>.<actionId>.<raw body>">',
        },
      },
      schemas: { ...contractSchemas(), ...restSchemas },
    },
  };
  return document;
}

function contractSchemas(): Record<string, object> {
  const registry = z.registry<{ id: string }>();
  registry.add(ActionSpecSchema, { id: 'ActionSpec' });
  registry.add(EvidenceSchema, { id: 'Evidence' });
  registry.add(RetryStepInputSchema, { id: 'RetryStepInput' });
  registry.add(CompensateInputSchema, { id: 'CompensateInput' });
  registry.add(CancelInputSchema, { id: 'CancelInput' });
  registry.add(ResolveStepInputSchema, { id: 'ResolveStepInput' });
  registry.add(ActionStatusSchema, { id: 'ActionStatus' });
  registry.add(OperationArgSchema, { id: 'OperationArg' });
  registry.add(JsonValueSchema, { id: 'JsonValue' });
  const { schemas } = z.toJSONSchema(registry, {
    io: 'input',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _schema, ...rest } = schema as Record<string, unknown>;
      return [id, rest];
    }),
  );
}

const restSchemas = {
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: { type: 'string' },
      reason: { type: 'string' },
      omittedIssues: { type: 'integer', description: 'issues left out past the first 20' },
      issues: {
        type: 'array',
        items: {
          type: 'object',
          required: ['path', 'message'],
          properties: { path: { type: 'string' }, message: { type: 'string' } },
        },
      },
    },
  },
  StartedAction: {
    type: 'object',
    required: ['actionId', 'runId', 'created'],
    properties: { actionId: { type: 'string' }, runId: { type: 'string' }, created: { type: 'boolean' } },
  },
  ActionSummary: {
    type: 'object',
    required: ['actionId', 'runId', 'networks', 'refs', 'execution', 'startedAt'],
    properties: {
      actionId: { type: 'string' },
      runId: { type: 'string' },
      type: { type: 'string' },
      phase: { type: 'string', enum: PhaseSchema.options },
      networks: { type: 'array', items: { type: 'string' } },
      refs: { type: 'array', items: { type: 'string' } },
      execution: { type: 'string' },
      startedAt: { type: 'string', format: 'date-time' },
      closedAt: { type: 'string', format: 'date-time' },
    },
  },
  TransitionEvent: {
    type: 'object',
    required: ['actionId', 'sequence', 'kind', 'from', 'to', 'at', 'source'],
    properties: {
      actionId: { type: 'string' },
      sequence: { type: 'integer', minimum: 1 },
      kind: { type: 'string', enum: ['step', 'phase'] },
      step: { type: 'string' },
      network: { type: 'string' },
      for: { type: 'string', enum: ['operation', 'compensation'] },
      from: { type: 'string' },
      to: { type: 'string' },
      at: { type: 'string' },
      source: { type: 'string' },
      operator: { type: 'string' },
      reason: { type: 'string' },
      ref: { type: 'string' },
      confirmations: { type: 'integer' },
    },
  },
};
