/**
 * The Temporal side of the production topology: the schemas (temporal-sql-tool, idempotent: create, set up, update to
 * the binary's version), the server from deploy/temporal/config/development-postgres.yaml, the namespace and Settle's
 * search attributes, and the Web UI server from deploy/temporal/ui/cluster.yaml.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { SETTLE_SEARCH_ATTRIBUTES } from '../../contract/search-attributes';
import { portOpen, sleep, type ComponentSpec } from './supervisor';

export const REPO_ROOT = path.resolve(__dirname, '../..');
export const SERVER_CONFIG_DIR = 'deploy/temporal/config';
export const SERVER_CONFIG_ENV = 'development-postgres';
export const DYNAMIC_CONFIG_FILE = 'deploy/temporal/dynamicconfig/development-postgres.yaml';
export const UI_CONFIG_DIR = 'deploy/temporal/ui';
export const UI_CONFIG_ENV = 'cluster';

export const DATABASES = { history: 'temporal', visibility: 'temporal_visibility' } as const;

export interface Database {
  port: number;
  user: string;
  password: string;
}

/** The server's ports besides the frontend's gRPC port (picked once, kept in the state folder). */
export interface TemporalPorts {
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

export class TemporalSetupError extends Error {
  override name = 'TemporalSetupError';
}

/** Creates both databases and brings their schemas to the version this server binary expects (safe to repeat). */
export async function setupSchemas(sqlTool: string, db: Database): Promise<void> {
  const schemas = [
    [DATABASES.history, 'postgresql/v12/temporal'],
    [DATABASES.visibility, 'postgresql/v12/visibility'],
  ] as const;
  for (const [database, schema] of schemas) {
    const base = [
      '--plugin',
      'postgres12',
      '--ep',
      '127.0.0.1',
      '-p',
      String(db.port),
      '-u',
      db.user,
      '--db',
      database,
    ];
    for (const command of [
      ['create-database'],
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '--schema-name', schema],
    ]) {
      await run(sqlTool, [...base, ...command], { ...process.env, SQL_PASSWORD: db.password });
    }
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(
            new TemporalSetupError(`${path.basename(command)} ${args.join(' ')}: exit ${code}\n${output.slice(-3000)}`),
          ),
    );
  });
}

export function temporalServerSpec(
  bin: string,
  options: { port: number; ports: TemporalPorts; db: Database; logLevel: string },
): ComponentSpec {
  const { port, ports, db } = options;
  return {
    name: 'temporal',
    command: bin,
    args: ['--root', REPO_ROOT, '--config', SERVER_CONFIG_DIR, '--env', SERVER_CONFIG_ENV, '--allow-no-auth', 'start'],
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      LOG_LEVEL: options.logLevel,
      POSTGRES_SEEDS: '127.0.0.1',
      DB_PORT: String(db.port),
      POSTGRES_USER: db.user,
      POSTGRES_PWD: db.password,
      DBNAME: DATABASES.history,
      VISIBILITY_DBNAME: DATABASES.visibility,
      BIND_ON_IP: '127.0.0.1',
      TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
      FRONTEND_GRPC_PORT: String(port),
      FRONTEND_HTTP_PORT: String(ports.frontendHttp),
      FRONTEND_MEMBERSHIP_PORT: String(ports.frontendMembership),
      HISTORY_GRPC_PORT: String(ports.history),
      HISTORY_MEMBERSHIP_PORT: String(ports.historyMembership),
      MATCHING_GRPC_PORT: String(ports.matching),
      MATCHING_MEMBERSHIP_PORT: String(ports.matchingMembership),
      WORKER_GRPC_PORT: String(ports.worker),
      WORKER_MEMBERSHIP_PORT: String(ports.workerMembership),
      PROMETHEUS_ENDPOINT: `127.0.0.1:${ports.metrics}`,
      DYNAMIC_CONFIG_FILE_PATH: path.join(REPO_ROOT, DYNAMIC_CONFIG_FILE),
    },
    ready: () => portOpen(port),
    readyTimeoutMs: 120_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 30_000,
  };
}

/** gRPC's status code for "already exists" (a namespace or search attribute registered by an earlier start). */
const ALREADY_EXISTS = 6;

function hasCode(error: unknown, code: number): boolean {
  return isGrpcServiceError(error) && error.code === code;
}

/**
 * Registers the namespace (retention 7 days) and Settle's search attributes when they are missing, then waits until
 * the frontend serves the namespace and a visibility query that names the attributes.
 */
export async function registerNamespace(address: string, namespace: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const retry = async <T>(what: string, attempt: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await attempt();
      } catch (error) {
        if (Date.now() > deadline) throw new TemporalSetupError(`${what}: ${(error as Error).message}`);
        await sleep(500);
      }
    }
  };
  const connection = await retry('connecting to Temporal', () =>
    Connection.connect({ address, connectTimeout: 5_000 }),
  );
  try {
    await retry(`registering the namespace ${namespace}`, async () => {
      try {
        await connection.workflowService.registerNamespace({
          namespace,
          workflowExecutionRetentionPeriod: msToTs('7d'),
        });
      } catch (error) {
        if (!hasCode(error, ALREADY_EXISTS)) throw error;
      }
    });
    await retry(`waiting for the namespace ${namespace}`, () =>
      connection.workflowService.describeNamespace({ namespace }),
    );
    const existing = await retry('listing search attributes', () =>
      connection.operatorService.listSearchAttributes({ namespace }),
    );
    const missing = Object.fromEntries(
      SETTLE_SEARCH_ATTRIBUTES.filter((key) => !existing.customAttributes?.[key.name]).map((key) => [
        key.name,
        encodeSearchAttributeIndexedValueType(key.type)!,
      ]),
    );
    if (Object.keys(missing).length > 0) {
      await retry('adding search attributes', async () => {
        try {
          await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
        } catch (error) {
          if (!hasCode(error, ALREADY_EXISTS)) throw error;
        }
      });
    }
    const query = SETTLE_SEARCH_ATTRIBUTES.map((key) => `${key.name} = "probe"`).join(' AND ');
    await retry('querying visibility with the search attributes', () =>
      connection.workflowService.listWorkflowExecutions({ namespace, query, pageSize: 1 }),
    );
  } finally {
    await connection.close();
  }
}

export function uiServerSpec(
  bin: string,
  options: { port: number; temporalAddress: string; namespace: string; codecEndpoint?: string },
): ComponentSpec {
  const url = `http://127.0.0.1:${options.port}/`;
  return {
    name: 'ui',
    command: bin,
    args: ['--root', REPO_ROOT, '--config', UI_CONFIG_DIR, '--env', UI_CONFIG_ENV, 'start'],
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: options.temporalAddress,
      TEMPORAL_UI_IP: '127.0.0.1',
      TEMPORAL_UI_PORT: String(options.port),
      TEMPORAL_DEFAULT_NAMESPACE: options.namespace,
      TEMPORAL_CODEC_ENDPOINT: options.codecEndpoint ?? process.env.TEMPORAL_CODEC_ENDPOINT ?? '',
    },
    ready: async () => (await fetch(url).catch(() => undefined))?.ok === true,
    readyTimeoutMs: 60_000,
  };
}
