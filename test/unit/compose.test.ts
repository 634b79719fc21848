/**
 * docker-compose.yml against the Compose Specification and against the repository and the native run
 * (deploy/compose/check.ts): the file as it is has no problem, and each rule finds the problem in a mutated copy. The
 * schema is vendored as deploy/compose-spec.schema.json, unchanged: github.com/compose-spec/compose-spec,
 * schema/compose-spec.json at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6, Apache License 2.0.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ajv, composeProblems, loadCompose, TSX } from '../../deploy/compose/check';
import { DEVNET_FILES, writeDevnetState } from '../../deploy/compose/devnet';
import { NATIVE_WORKERS, read, realRepository, ROOT } from '../../deploy/compose/repository';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_SERVER_VERSION } from '../../devnet/cluster/binaries';
import { NetworksFileSchema } from '../../networks/config';

const composeText = read('docker-compose.yml');
const load = () => loadCompose(composeText) as { services: Record<string, Record<string, unknown>> };

/** A copy of docker-compose.yml with one change. */
function mutated(change: (compose: ReturnType<typeof load>) => void): unknown {
  const copy = load();
  change(copy);
  return copy;
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification and consistent with the repository and the native run', () => {
    expect(composeProblems(load())).toEqual([]);
  });

  it('is checked against a schema that is the vendored Compose Specification, itself a valid draft-07 schema', () => {
    expect(ajv.validateSchema(JSON.parse(read('deploy/compose-spec.schema.json')) as object)).toBe(true);
    expect(composeProblems({ services: { worker: { image: 'settle:0.1.0', replica: 2 } } })).toEqual([
      'schema: /services/worker must NOT have additional properties',
    ]);
  });

  it("runs the schema job's script from the repository: POSIX sh, executable", () => {
    const file = path.join(ROOT, 'deploy/compose/setup-postgres.sh');
    expect(execFileSync('sh', ['-n', file]).toString()).toBe('');
    expect(statSync(file).mode & 0o111).not.toBe(0);
  });

  it('has the devnet chains write, with the native functions, the files the other services are given', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-compose-'));
    try {
      const chain = (name: string, port: number) => ({
        name,
        chainId: port,
        rpcUrl: `http://0.0.0.0:${port}`,
        blockTimeMs: 1000,
        process: undefined as never,
        stop: async () => undefined,
        contracts: {
          token: `0x${'1'.repeat(40)}`,
          escrow: `0x${'2'.repeat(40)}`,
          minter: `0x${'3'.repeat(40)}`,
        } as const,
      });
      const files = writeDevnetState(dir, { chainA: chain('chainA', 8545), chainB: chain('chainB', 8546) }, 'chains');
      for (const [what, file] of Object.entries(DEVNET_FILES)) {
        expect(files[what as keyof typeof files]).toBe(path.resolve(dir, file));
      }
      const networks = NetworksFileSchema.parse(JSON.parse(readFileSync(files.networks, 'utf8')));
      expect(Object.values(networks.networks).map((n) => n.rpcUrls)).toEqual([
        ['http://chains:8545'],
        ['http://chains:8546'],
      ]);
      expect(networks.trust?.verifyClaims).toBe(true);
      for (const secret of [files.watcherKey, files.apiTokens]) expect(statSync(secret).mode & 0o077).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds an image tag that is not the native version, or not pinned', () => {
    const server = mutated((c) => (c.services.temporal.image = 'temporalio/server:1.29.0'));
    expect(composeProblems(server)).toContain(
      `temporal: temporalio/server:1.29.0, the native server is ${TEMPORAL_SERVER_VERSION}`,
    );
    const ui = mutated((c) => (c.services['temporal-ui'].image = 'temporalio/ui:latest'));
    expect(composeProblems(ui)).toEqual(
      expect.arrayContaining([
        'temporal-ui: image temporalio/ui:latest is not pinned to a version',
        `temporal-ui: temporalio/ui:latest, the native UI is ${TEMPORAL_UI_SERVER_VERSION}`,
      ]),
    );
    const tools = mutated((c) => (c.services['temporal-schema'].image = 'temporalio/admin-tools:1.30.1'));
    expect(composeProblems(tools)).toContain(
      `temporal-schema: temporalio/admin-tools:1.30.1 is not the admin tools of server ${TEMPORAL_SERVER_VERSION}`,
    );
    const postgres = mutated((c) => (c.services.postgresql.image = 'postgres:16.4-bookworm'));
    expect(composeProblems(postgres)).toContain(
      'postgresql: postgres:16.4-bookworm is not PostgreSQL 15.x on bookworm (native)',
    );
  });

  it('finds a command that is not an npm script, or a file that does not exist', () => {
    const script = mutated((c) => (c.services.api.command = ['npm', 'run', 'http-api']));
    expect(composeProblems(script)).toContain('api: npm run http-api is not a script of package.json');
    const file = mutated((c) => (c.services.chains.command = [...TSX, 'deploy/compose/chains.ts']));
    expect(composeProblems(file)).toContain('chains: runs deploy/compose/chains.ts, which does not exist');
    const notAScript = mutated((c) => (c.services.api.command = [...TSX, 'workers/api/app.ts']));
    expect(composeProblems(notAScript)).toContain(
      "api: runs workers/api/app.ts, which is neither an npm script's nor a compose job's",
    );
    const exposed = mutated((c) => (c.services.api.ports = ['8080:8080']));
    expect(composeProblems(exposed)).toContain('api: publishes "8080:8080" beyond 127.0.0.1');
    const mount = mutated((c) => (c.services.temporal.volumes = ['./deploy/temporal-server:/etc/settle-temporal:ro']));
    expect(composeProblems(mount)).toContain('temporal: mounts deploy/temporal-server, which does not exist');
  });

  it('finds a variable the process does not read, or a value its configuration refuses', () => {
    const unread = mutated(
      (c) => ((c.services['watcher-chain-a'].environment as Record<string, string>).SETTLE_TASK_QUEUE = 'x'),
    );
    expect(composeProblems(unread)).toContain(
      'watcher-chain-a: SETTLE_TASK_QUEUE is not read by workers/watcher/main.ts',
    );
    const misspelt = mutated((c) => ((c.services.worker.environment as Record<string, string>).SETTLE_TASKQUEUE = 'x'));
    expect(composeProblems(misspelt)).toContain('worker: SETTLE_TASKQUEUE is not read by workers/worker/main.ts');
    const value = mutated((c) => ((c.services.worker.environment as Record<string, string>).SETTLE_LOG_LEVEL = 'LOUD'));
    expect(composeProblems(value).join('\n')).toMatch(/^worker: SETTLE_LOG_LEVEL: /m);
    const server = mutated((c) => ((c.services.temporal.environment as Record<string, string>).NUM_SHARDS = '8'));
    expect(composeProblems(server)).toContain(
      "temporal: NUM_SHARDS is not a variable of the native server's configuration",
    );
    const file = mutated(
      (c) => ((c.services.api.environment as Record<string, string>).SETTLE_API_TOKENS = '/etc/settle/tokens.json'),
    );
    expect(composeProblems(file).join('\n')).toMatch(
      /^api: SETTLE_API_TOKENS=\/etc\/settle\/tokens.json is not a file the devnet chains write/m,
    );
  });

  it('finds a topology that is not the native one', () => {
    const replicas = mutated((c) => (c.services.worker.deploy = { replicas: 1 }));
    expect(composeProblems(replicas)).toContain(`worker: 1 replicas, the native run has ${NATIVE_WORKERS}`);
    const oneWatcher = mutated((c) => delete c.services['watcher-chain-b']);
    expect(composeProblems(oneWatcher).join('\n')).toMatch(/^watchers: one per network/m);
    const config = mutated((c) => ((c.services.temporal.entrypoint as string[])[6] = 'development-sql'));
    expect(composeProblems(config).join('\n')).toMatch(
      /^temporal: must run temporal-server with the native configuration/m,
    );
    const flags = mutated((c) => (c.services.temporal.entrypoint as string[]).splice(7, 1));
    expect(composeProblems(flags).join('\n')).toMatch(
      /^temporal: flags start differ from the native run's --allow-no-auth start$/m,
    );
    const ui = mutated(
      (c) => ((c.services['temporal-ui'].environment as Record<string, string>).TEMPORAL_UI_PORT_X = '1'),
    );
    expect(composeProblems(ui)).toContain(
      "temporal-ui: TEMPORAL_UI_PORT_X is not a variable of the native UI server's configuration",
    );
    const health = mutated(
      (c) => (c.services.chains.healthcheck = { test: ['CMD', 'test', '-f', '/etc/settle/settle.config.json'] }),
    );
    expect(composeProblems(health)).toContain(
      'chains: its health check must wait for /etc/settle/devnet.ready, written once the devnet is complete',
    );
    const required = mutated(
      (c) => ((c.services.api.depends_on as Record<string, { required?: boolean }>).chains.required = true),
    );
    expect(composeProblems(required)).toContain('api: depends on chains (profile devnet) without required: false');
  });

  it('finds a Dockerfile or .dockerignore that would not build what the services run', () => {
    const ignoring = { ...realRepository, dockerignore: `${realRepository.dockerignore}\nworkers/watcher\n` };
    expect(composeProblems(load(), ignoring)).toContain(
      'watcher-chain-a: runs workers/watcher/main.ts, which .dockerignore leaves out',
    );
    const dev = { ...realRepository, dockerfile: realRepository.dockerfile.replace('npm ci --omit=dev', 'npm ci') };
    expect(composeProblems(load(), dev)).toContain('Dockerfile: must install with npm ci --omit=dev');
    const cmd = {
      ...realRepository,
      dockerfile: realRepository.dockerfile.replace(/^CMD .*$/m, 'CMD ["npm", "run", "wrk"]'),
    };
    expect(composeProblems(load(), cmd)).toContain('Dockerfile: npm run wrk is not a script of package.json');
    const withoutViem = new Set([...realRepository.installed].filter((name) => name !== 'viem'));
    expect(composeProblems(load(), { ...realRepository, installed: withoutViem })).toEqual(
      expect.arrayContaining([
        'worker: workers/worker/main.ts imports viem, which npm ci --omit=dev does not install',
        'watcher-chain-a: workers/watcher/main.ts imports viem, which npm ci --omit=dev does not install',
      ]),
    );
    expect(realRepository.installed.has('jest')).toBe(false); // a development dependency stays out of the image
    const node = {
      ...realRepository,
      dockerfile: realRepository.dockerfile.replace(/FROM node:\S+/, 'FROM node:22-slim'),
    };
    expect(composeProblems(load(), node).join('\n')).toMatch(/^Dockerfile: FROM must pin node/m);
  });
});
