/**
 * The `temporal-register` one-shot job of docker-compose.yml: registers the namespace and Settle's search attributes
 * with the same code as the native run (`registerNamespace` of devnet/cluster/temporal.ts: idempotent, and it returns
 * once a visibility query naming the attributes is served), then exits 0. The Temporal server is found through the
 * standard variables (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE), as every Settle process finds it.
 */
import { registerNamespace } from '../../devnet/cluster/temporal';
import { temporalSettings } from '../../workers/worker/config';

async function main(): Promise<void> {
  const { TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, temporalConnection } = temporalSettings(process.env);
  if (temporalConnection.tls || temporalConnection.apiKey) {
    // registerNamespace connects as the native cluster does, in plain gRPC on a private network.
    throw new Error(
      'TLS or an API key is configured: register the namespace and search attributes with the temporal CLI',
    );
  }
  process.stdout.write(`register: namespace ${TEMPORAL_NAMESPACE} and search attributes at ${TEMPORAL_ADDRESS}\n`);
  await registerNamespace(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE);
  process.stdout.write('register: done\n');
}

if (require.main === module) {
  main().catch((error: Error) => {
    process.stderr.write(`register: ${error.message}\n`);
    process.exit(1);
  });
}
