/**
 * `npm run api`: the HTTP API as a process. Configuration from the environment, parsed once (workers/api/config.ts
 * and the standard Temporal variables); prints the address it listens on.
 */
import { SettleClient } from '../../client/settle-client';
import { buildApi } from './app';
import { parseApiConfig } from './config';

async function main(): Promise<void> {
  const config = parseApiConfig(process.env);
  const settle = await SettleClient.connect({ env: process.env });
  const app = buildApi({ settle, config });
  const address = await app.listen({ host: config.SETTLE_API_HOST, port: config.SETTLE_API_PORT });
  process.stdout.write(`settle api: listening on ${address}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void app
      .close()
      .then(() => settle.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`settle api: ${error.message}\n`);
  process.exit(1);
});
