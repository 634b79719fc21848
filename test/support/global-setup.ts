import { ensureTemporalCli } from '../../devnet/temporal-cli';

/** Obtains the Temporal CLI once for the whole run (built and cached on first use). */
export default async function globalSetup(): Promise<void> {
  process.env.SETTLE_TEST_TEMPORAL_CLI = await ensureTemporalCli();
}
