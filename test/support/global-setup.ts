import { ensureTemporalCli } from '../../devnet/temporal-cli';
import { ensureTimeSkippingServer } from '../../devnet/time-skipping-server';

/** Obtains the Temporal CLI and the time-skipping test server once for the whole run (built and cached on first use). */
export default async function globalSetup(): Promise<void> {
  process.env.SETTLE_TEST_TEMPORAL_CLI = await ensureTemporalCli();
  process.env.SETTLE_TEST_TIME_SKIPPING_SERVER = ensureTimeSkippingServer();
}
