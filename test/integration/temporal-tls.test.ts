/**
 * The worker and the client reach Temporal over mutual TLS, configured only through Temporal's standard variables
 * (`@temporalio/envconfig`). The dev server speaks plain gRPC, so it sits behind a TLS terminator on 127.0.0.1 that
 * demands a client certificate; the certificates are made for the test with `openssl`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ConnectionError, SettleClient } from '../../client';
import { parseWorkerConfig } from '../../workers/worker/config';
import { startWorker, type RunningWorker } from '../../workers/worker/main';
import { startTestServer, uniqueId } from '../support/temporal';

let env: TestWorkflowEnvironment;
let terminator: tls.Server;
let address: string;
let dir: string;
let worker: RunningWorker;
const taskQueue = uniqueId('tls');

/** A CA, a server certificate for 127.0.0.1, and a client certificate, all signed by the CA. */
function makeCertificates(folder: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: folder, stdio: 'ignore' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=settle-test-ca',
  );
  for (const [name, extension] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    run(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    writeFileSync(path.join(folder, `${name}.ext`), `${extension}\n`);
    run(
      'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`,
    ); // prettier-ignore
  }
}

beforeAll(async () => {
  env = await startTestServer();
  dir = mkdtempSync(path.join(os.tmpdir(), 'settle-tls-'));
  makeCertificates(dir);
  const [host, port] = env.address.split(':');
  const file = (name: string) => readFileSync(path.join(dir, name));
  terminator = tls.createServer(
    {
      key: file('server.key'),
      cert: file('server.pem'),
      ca: file('ca.pem'),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client) => {
      const upstream = net.connect(Number(port), host);
      client.pipe(upstream).pipe(client);
      for (const socket of [client, upstream]) socket.on('error', () => client.destroy());
    },
  );
  await new Promise<void>((resolve) => terminator.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(terminator.address() as net.AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await worker?.shutdown();
  await new Promise((resolve) => terminator?.close(resolve));
  await env?.teardown();
});

function tlsEnv(withClientCertificate = true): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    SETTLE_TASK_QUEUE: taskQueue,
    TEMPORAL_TLS: 'true',
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'ca.pem'),
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
    ...(withClientCertificate
      ? {
          TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'),
          TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
        }
      : {}),
  };
}

it('runs an action with the worker and the client on mutual TLS, from the standard variables alone', async () => {
  worker = await startWorker(parseWorkerConfig(tlsEnv()), { networks: {}, adapters: {} });
  const settle = await SettleClient.connect({ env: tlsEnv() });
  const actionId = uniqueId('over-tls');
  await settle.start({ actionId, steps: [{ id: 'attest', network: 'attester', operation: { kind: 'await' } }] });
  await settle.evidence(actionId, { step: 'attest', kind: 'finalized', source: 'attester' });
  const status = await settle.waitFor(actionId, { phase: 'completed' }, { timeoutMs: 60_000 });
  await settle.close();
  expect(status.phase).toBe('completed');
});

it('is refused by a server that demands a client certificate when it has none', async () => {
  const refused = await SettleClient.connect({ env: tlsEnv(false) })
    .then((settle) => settle.status('anything'))
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  expect(refused).toBeInstanceOf(ConnectionError);
});
