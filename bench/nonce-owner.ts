/**
 * `npm run bench:nonces`: submissions per second through the nonce owners (`signerNonces` entity workflows), on ONE
 * signer from 1, 4 and 16 workers at once, against the same number of workers each on a signer of its own (distinct
 * signers: no contention). A submission is what `networks/evm/sender.ts` asks its owner for every new transaction: a
 * `lookupNonce` update (with start), then a `recordSignedTx` update at the nonce it was given (the turn's next nonce
 * when this worker recorded before), again at the owner's `next` when another worker won that nonce. Each worker has
 * its own client-side factory (`temporalNonceOwners`) as a worker process would; signing and broadcasting are left
 * out (they do not touch Temporal), so this is the owner's own limit. The owners run on a Worker in this process with
 * the production bundle; one-signer and distinct-signer batches alternate (O D O D) at each worker count.
 * BENCH_NONCE_WORKERS (a list), BENCH_REPEATS and BENCH_NONCE_SUBMISSIONS (per batch) change the load.
 */
import { randomBytes } from 'node:crypto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { keccak256, type Hex } from 'viem';
import { temporalNonceOwners, type NonceOwner } from '../networks/evm/nonce-owner';
import { machineFacts, median, percentile, round, startServer, writeResults } from './support';
// The bundle the worker process builds (shared modules preloaded), as the tests run it.
import { workflowBundle } from '../test/support/temporal';

const LEVELS = (process.env.BENCH_NONCE_WORKERS ?? '1,4,16').split(',').map(Number);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const SUBMISSIONS = Number(process.env.BENCH_NONCE_SUBMISSIONS ?? 48);
const NONCE_QUEUE = 'settle-bench-nonces';
const SCOPE = 'bench:31337:0xbench';
const KINDS = ['one signer', 'distinct signers'] as const;
type Kind = (typeof KINDS)[number];

interface Batch {
  kind: Kind;
  workers: number;
  repeat: number;
  submissions: number;
  perSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Records refused because another worker had taken the nonce (each costs one more update). */
  races: number;
  /** Updates sent per submission (lookup, record, and a record per race). */
  updatesPerSubmission: number;
}

/** One submission, as the sender makes it: lookup, then record at the next nonce until one is accepted. */
async function submit(owner: NonceOwner, key: string, local: { next: number }): Promise<{ races: number }> {
  const { next } = await owner.lookup({ key, chainNonce: 0 });
  let nonce = Math.max(next, local.next);
  for (let races = 0; races < 200; races++) {
    const raw = `0x${randomBytes(110).toString('hex')}` as Hex;
    const recorded = await owner.record({ key, nonce, hash: keccak256(raw), raw, mode: 'new' });
    if (recorded.accepted) {
      local.next = nonce + 1;
      return { races };
    }
    if (recorded.record) return { races };
    nonce = recorded.next;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * Math.min(races + 1, 10)));
  }
  throw new Error(`${key}: no nonce after 200 races`);
}

async function runBatch(
  client: Parameters<typeof temporalNonceOwners>[0],
  kind: Kind,
  workers: number,
  repeat: number,
): Promise<Batch> {
  const run = `${kind === 'one signer' ? 'one' : 'distinct'}-${workers}-${repeat}-${Date.now().toString(36)}`;
  const latencies: number[] = [];
  let races = 0;
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      // Each worker: its own factory (as its own process), one submission at a time.
      const owners = temporalNonceOwners(client, NONCE_QUEUE);
      const address = kind === 'one signer' ? `0x${run}-shared` : `0x${run}-w${w}`;
      const owner = owners(SCOPE, address);
      const local = { next: 0 };
      while (next < SUBMISSIONS) {
        const key = `${run}/${next++}`;
        const started = Date.now();
        races += (await submit(owner, key, local)).races;
        latencies.push(Date.now() - started);
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  return {
    kind,
    workers,
    repeat,
    submissions: latencies.length,
    perSecond: latencies.length / seconds,
    latencyP50Ms: median(latencies),
    latencyP99Ms: percentile(latencies, 99),
    races,
    updatesPerSubmission: (2 * latencies.length + races) / latencies.length,
  };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { env } = await startServer();
  const stops: (() => Promise<unknown>)[] = [() => env.teardown()];
  try {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: NONCE_QUEUE,
      workflowBundle: await workflowBundle(),
    });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });
    // Warm-up: the bundle's first workflow tasks are slower than any later one.
    await runBatch(env.client, 'distinct signers', 2, -1);

    const batches: Batch[] = [];
    for (const workers of LEVELS) {
      for (let repeat = 0; repeat < REPEATS; repeat++) {
        for (const kind of KINDS) {
          const batch = await runBatch(env.client, kind, workers, repeat);
          process.stdout.write(
            `${workers} worker(s), ${kind} #${repeat + 1}: ${round(batch.perSecond)}/s, p50 ${batch.latencyP50Ms} ms, ` +
              `${batch.races} races\n`,
          );
          batches.push(batch);
        }
      }
    }
    report(batches);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

function report(batches: Batch[]): void {
  const rows: Record<string, Record<string, number>> = {};
  const ratios: Record<string, number> = {};
  for (const workers of LEVELS) {
    for (const kind of KINDS) {
      const of = batches.filter((b) => b.kind === kind && b.workers === workers);
      rows[`${workers} worker(s), ${kind}`] = {
        'submissions/s (median)': round(median(of.map((b) => b.perSecond))),
        'latency p50 ms': median(of.map((b) => b.latencyP50Ms)),
        'latency p99 ms': median(of.map((b) => b.latencyP99Ms)),
        'updates per submission': round(median(of.map((b) => b.updatesPerSubmission))),
      };
    }
    // Per repeat, the one-signer batch against the distinct-signer batch beside it; then the median.
    const perRepeat = Array.from({ length: REPEATS }, (_, r) => {
      const at = (kind: Kind) => batches.find((b) => b.kind === kind && b.workers === workers && b.repeat === r)!;
      return at('one signer').perSecond / at('distinct signers').perSecond;
    });
    ratios[`${workers} worker(s): one signer ÷ distinct signers`] = round(median(perRepeat), 3);
  }
  process.stdout.write(
    `\nnonce owner submissions (lookup + record per submission), ${SUBMISSIONS} per batch, ${REPEATS} repeats (medians)\n`,
  );
  console.table(rows);
  console.table(ratios);
  const file = writeResults('nonce-owner', {
    benchmark: 'nonce-owner',
    machine: machineFacts(),
    settings: { workers: LEVELS, repeats: REPEATS, submissionsPerBatch: SUBMISSIONS },
    medians: rows,
    ratios,
    samples: batches,
  });
  process.stdout.write(`written to ${file}\n`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
