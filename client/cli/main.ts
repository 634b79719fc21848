/**
 * The `settle` CLI. `runCli` is the whole program with its world passed in (streams, environment, connection), so
 * tests drive it in-process as well as through `bin/settle.js`.
 */
import { ClientConfigError } from '../config';
import {
  ActionClosedError,
  ActionNotFoundError,
  ConnectionError,
  UpdateRejectedError,
  ValidationError,
} from '../errors';
import { checkActionId } from '../action-id';
import type { SettleClient, SettleClientOptions } from '../settle-client';
import { HELP, parseCommand, UsageError, type Command } from './args';
import { EXIT, type ExitCode } from './exit-codes';
import {
  cancelInput,
  compensateInput,
  evidenceFromFlags,
  parseJson,
  readSource,
  resolveFromFlags,
  retryInput,
  specFromText,
} from './inputs';
import { renderStatus, renderSummaries } from './render';
import { watchStatus } from './watch';

/** What the CLI needs of a client: the SettleClient surface it uses. */
export type CliBackend = Pick<
  SettleClient,
  'start' | 'status' | 'list' | 'find' | 'evidence' | 'retryStep' | 'compensate' | 'cancel' | 'resolveStep' | 'close'
>;

export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown };
  readStdin(): Promise<string>;
  env: Record<string, string | undefined>;
  connect?(options: SettleClientOptions): Promise<CliBackend>;
  signal?: AbortSignal;
}

/**
 * Runs one `settle` command; resolves to its exit code (see exit-codes.ts).
 *
 * @example
 * const code = await runCli(['status', 'xfer-7f3a', '--json'], nodeIo());
 */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    return fail(io, false, error);
  }
  if (command.name === 'help') {
    const topic = command.topic && Object.hasOwn(HELP, command.topic) ? command.topic : '';
    io.stdout.write(`${HELP[topic]}\n`);
    return EXIT.ok;
  }
  let client: CliBackend | undefined;
  try {
    // Inputs are read and validated before connecting: an invalid one never reaches Temporal.
    const run = await prepare(command, io);
    const connect = io.connect ?? connectSettle;
    client = await connect({
      env: io.env,
      ...(command.address ? { address: command.address } : {}),
      ...(command.namespace ? { namespace: command.namespace } : {}),
    });
    return await run(client);
  } catch (error) {
    return fail(io, command.json, error);
  } finally {
    await client?.close().catch(() => undefined);
  }
}

/** Loaded on demand: help and invalid input answer without loading Temporal's client. */
async function connectSettle(options: SettleClientOptions): Promise<CliBackend> {
  const { SettleClient } = require('../settle-client') as typeof import('../settle-client');
  return SettleClient.connect(options);
}

type Run = (client: CliBackend) => Promise<ExitCode>;

async function prepare(command: Exclude<Command, { name: 'help' }>, io: CliIo): Promise<Run> {
  const print = (json: unknown, text: string) =>
    io.stdout.write(command.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  const operator = io.env.SETTLE_OPERATOR ?? io.env.USER;
  const source = 'settle-cli';
  const fileInput = async (file: string | undefined, subject: string) =>
    file === undefined ? undefined : parseJson(await readSource(file, io.readStdin, subject), subject);

  if ('actionId' in command) checkActionId(command.actionId);
  switch (command.name) {
    case 'start': {
      const spec = specFromText(await readSource(command.spec, io.readStdin, 'ActionSpec'));
      return async (client) => {
        const started = await client.start(spec);
        print(
          started,
          started.created
            ? `started ${started.actionId} (run ${started.runId})`
            : `${started.actionId} already exists (run ${started.runId}); nothing new was started`,
        );
        return EXIT.ok;
      };
    }
    case 'status':
      return async (client) => {
        if (!command.watch) {
          const status = await client.status(command.actionId);
          print(status, renderStatus(status));
          return EXIT.ok;
        }
        const final = await watchStatus(
          () => client.status(command.actionId),
          { write: (text) => io.stdout.write(text), tty: io.stdout.isTTY === true, json: command.json },
          command.intervalMs,
          io.signal,
        );
        return final.phase === 'completed' ? EXIT.ok : EXIT.notCompleted;
      };
    case 'list': {
      const limit =
        command.limit === undefined ? undefined : /^\d+$/.test(command.limit) ? Number(command.limit) : command.limit;
      const filter = {
        ...(command.phase ? { phase: command.phase } : {}),
        ...(command.network ? { network: command.network } : {}),
        ...(command.type ? { type: command.type } : {}),
        ...(limit !== undefined ? { limit } : {}),
      } as Parameters<CliBackend['list']>[0];
      return async (client) => {
        const actions = await client.list(filter);
        print(actions, renderSummaries(actions));
        return EXIT.ok;
      };
    }
    case 'find':
      return async (client) => {
        const actions = await client.find({ ref: command.ref });
        print(actions, actions.length ? renderSummaries(actions) : `no action has ref ${command.ref}`);
        return actions.length ? EXIT.ok : EXIT.notFound;
      };
    case 'evidence': {
      const evidence = evidenceFromFlags(await fileInput(command.file, 'evidence'), command.flags, { source });
      return async (client) => {
        await client.evidence(command.actionId, evidence);
        print({ actionId: command.actionId, delivered: true, evidence }, `evidence delivered to ${command.actionId}`);
        return EXIT.ok;
      };
    }
    case 'retry': {
      const input = retryInput({ step: command.step, reason: command.reason, operator: command.operator ?? operator });
      return updated(print, (client) => client.retryStep(command.actionId, input));
    }
    case 'compensate': {
      const input = compensateInput({ reason: command.reason, operator: command.operator ?? operator });
      return updated(print, (client) => client.compensate(command.actionId, input));
    }
    case 'cancel': {
      const input = cancelInput({ reason: command.reason, operator: command.operator ?? operator });
      return updated(print, (client) => client.cancel(command.actionId, input));
    }
    case 'resolve': {
      const input = resolveFromFlags(
        await fileInput(command.file, 'resolveStep input'),
        { step: command.step, reason: command.reason, operator: command.operator },
        command.flags,
        { source, ...(operator ? { operator } : {}) },
      );
      return updated(print, (client) => client.resolveStep(command.actionId, input));
    }
  }
}

function updated(
  print: (json: unknown, text: string) => void,
  apply: (client: CliBackend) => ReturnType<CliBackend['status']>,
): Run {
  return async (client) => {
    const status = await apply(client);
    print(status, renderStatus(status));
    return EXIT.ok;
  };
}

function fail(io: CliIo, json: boolean, error: unknown): ExitCode {
  const code = exitCodeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const body = {
      error: {
        type: error instanceof Error ? error.name : 'Error',
        message,
        ...(error instanceof ValidationError ? { issues: error.issues } : {}),
      },
      exitCode: code,
    };
    io.stderr.write(`${JSON.stringify(body)}\n`);
  } else {
    io.stderr.write(`settle: ${message}\n`);
    if (code === EXIT.usage) io.stderr.write('run "settle --help" for usage\n');
  }
  return code;
}

export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof ValidationError) return EXIT.invalid;
  if (error instanceof ActionNotFoundError) return EXIT.notFound;
  if (error instanceof UpdateRejectedError || error instanceof ActionClosedError) return EXIT.rejected;
  if (error instanceof ConnectionError || error instanceof ClientConfigError) return EXIT.unavailable;
  return EXIT.failure;
}

/** The real process's world. */
export function nodeIo(): CliIo {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

if (require.main === module) {
  runCli(process.argv.slice(2), nodeIo()).then(
    (code) => process.exit(code),
    (error: Error) => {
      process.stderr.write(`settle: ${error.stack ?? error.message}\n`);
      process.exit(EXIT.failure);
    },
  );
}
