/**
 * `npm run codec-server`: decodes (and encodes) Settle's encrypted payloads for the Temporal Web UI and CLI
 * (`temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888`, `temporal workflow show --codec-endpoint …
 * --codec-auth "Bearer …"`). Configuration from the environment (workers/codec-server/config.ts and the codec's
 * SETTLE_CODEC_KEYS, SETTLE_CODEC_KEY_ID), parsed once; prints the address it listens on, never a key or a token.
 */
import { EncryptionCodec } from '../../client/codec';
import { isLoopback, parseCodecServerConfig } from './config';
import { buildCodecServer } from './server';

async function main(): Promise<void> {
  const config = parseCodecServerConfig(process.env);
  const codec = new EncryptionCodec(config.codecKeys);
  const app = buildCodecServer({ config, codec });
  const address = await app.listen({ host: config.SETTLE_CODEC_SERVER_HOST, port: config.SETTLE_CODEC_SERVER_PORT });
  const auth = [
    ...(config.SETTLE_CODEC_SERVER_TOKEN ? ['bearer token'] : []),
    ...(config.SETTLE_CODEC_SERVER_JWKS_URL ? [`access tokens from ${config.SETTLE_CODEC_SERVER_JWT_ISSUER}`] : []),
  ];
  process.stdout.write(
    `settle codec server: listening on ${address}; keys ${codec.keyIds.join(', ')} (current ${codec.currentKeyId}); ` +
      `origins ${config.SETTLE_CODEC_SERVER_ORIGINS.join(', ')}; auth: ${auth.join(' or ')}\n`,
  );
  if (!isLoopback(config.SETTLE_CODEC_SERVER_HOST)) {
    process.stderr.write(
      `settle codec server: bound to ${config.SETTLE_CODEC_SERVER_HOST}, beyond this machine: serve it only behind TLS\n`,
    );
  }
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void app.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`settle codec server: ${error.message}\n`);
  process.exit(1);
});
