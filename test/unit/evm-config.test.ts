import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bridgeTransfer, burnAttestMint, PlanError } from '../../client/plans';
import { parseNetworksFile, readSignerKey } from '../../networks/config';
import { buildNetworks, networkInfo } from '../../networks/load';
import { ActionSpecSchema } from '../../contract/action-spec';
import { memoryNonceOwners } from '../../networks/evm/nonce-owner';

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const TEMPORAL = { TEMPORAL_ADDRESS: '127.0.0.1:7233', TEMPORAL_NAMESPACE: 'default', SETTLE_TASK_QUEUE: 'settle' };
const network = {
  kind: 'evm',
  chainId: 31337,
  rpcUrls: ['http://127.0.0.1:8545'],
  finality: { confirmations: 3 },
  blockTime: '1s',
  signers: ['bridge'],
};

describe('the networks file', () => {
  it('turns each network into the record the workflow reads, sending off unless enabled', () => {
    const file = parseNetworksFile(
      JSON.stringify({ networks: { chainA: network }, signers: { bridge: { keyEnv: 'SETTLE_KEY_BRIDGE' } } }),
    );
    expect(networkInfo('chainA', file.networks.chainA)).toEqual({
      network: 'chainA',
      finality: { confirmations: 3 },
      pollIntervalMs: 1000,
      maxPollIntervalMs: 10_000,
      pollable: true,
      canSubmit: false,
      blockTimeMs: 1000,
    });
  });

  it('names the field and the rule of a bad file', () => {
    const bad = { networks: { chainA: { ...network, chainId: -1, finality: { blocks: 2 }, signers: ['ops'] } } };
    expect(() => parseNetworksFile(JSON.stringify(bad), 'cfg.json')).toThrow(
      /cfg\.json: invalid networks file:[\s\S]*networks\.chainA\.chainId[\s\S]*networks\.chainA\.finality/,
    );
    expect(() => parseNetworksFile(JSON.stringify({ networks: { chainA: network } }))).toThrow(
      /networks\.chainA\.signers\[0\]: unknown signer "bridge"/,
    );
  });

  it('fails at start-up, naming the signer and never a key, when a key is missing or malformed', () => {
    const file = parseNetworksFile(
      JSON.stringify({ networks: { chainA: network }, signers: { bridge: { keyEnv: 'SETTLE_KEY_BRIDGE' } } }),
    );
    expect(() => buildNetworks(file, TEMPORAL, { env: {}, nonceOwners: memoryNonceOwners() })).toThrow(
      'signer "bridge": environment variable SETTLE_KEY_BRIDGE is not set',
    );
    expect(() => readSignerKey('bridge', { keyEnv: 'K' }, { K: 'nope' }, '.')).toThrow(/not a 0x-prefixed 32-byte/);
    const built = buildNetworks(file, TEMPORAL, { env: { SETTLE_KEY_BRIDGE: KEY }, nonceOwners: memoryNonceOwners() });
    expect(Object.keys(built.adapters)).toEqual(['chainA']);
    expect(JSON.stringify(built.networks)).not.toContain(KEY.slice(2));
  });

  it('reads a key file relative to the networks file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-key-'));
    writeFileSync(path.join(dir, 'bridge.key'), `${KEY}\n`, { mode: 0o600 });
    expect(readSignerKey('bridge', { keyFile: 'bridge.key' }, {}, dir)).toBe(KEY);
    expect(() => readSignerKey('bridge', { keyFile: 'missing.key' }, {}, dir)).toThrow(
      /signer "bridge": cannot read key file/,
    );
  });

  it('refuses a signing key file that group or others can read', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-key-'));
    writeFileSync(path.join(dir, 'loose.key'), `${KEY}\n`, { mode: 0o644 });
    expect(() => readSignerKey('bridge', { keyFile: 'loose.key' }, {}, dir)).toThrow(
      /signer "bridge": key file .*loose\.key is readable by group or others \(mode 644\); chmod 600 it/,
    );
  });
});

describe('plan builders', () => {
  const token = { escrow: '0x' + '0e'.repeat(20), minter: '0x' + '0f'.repeat(20) };
  const recipient = '0x' + '12'.repeat(20);

  it('builds a bridge transfer: lock, final, then mint; unlock compensates the lock', () => {
    const spec = ActionSpecSchema.parse(
      bridgeTransfer({
        actionId: 'x-1',
        from: 'chainA',
        to: 'chainB',
        token,
        amount: '1000',
        recipient,
        deadline: '10m',
      }),
    );
    expect(spec).toMatchObject({ type: 'bridge-transfer', deadline: 600_000, onDeadline: 'compensate' });
    expect(spec.steps.map((s) => [s.id, s.network, s.after])).toEqual([
      ['lock', 'chainA', []],
      ['mint', 'chainB', [{ step: 'lock', stage: 'final' }]],
    ]);
    expect(spec.steps[0].compensation).toMatchObject({ function: 'function unlock(bytes32 actionId)' });
  });

  it('builds burn, attest, mint with the attestation between the chains', () => {
    const spec = ActionSpecSchema.parse(
      burnAttestMint({ actionId: 'b-1', from: 'chainA', to: 'chainB', token, amount: '5', recipient }),
    );
    expect(spec.steps.map((s) => `${s.id}@${s.network}:${s.operation.kind}`)).toEqual([
      'burn@chainA:evm.call',
      'attest@attester:await',
      'mint@chainB:evm.call',
    ]);
    expect(spec.onDeadline).toBe('hold');
    expect(spec.steps[2].operation).toMatchObject({
      args: expect.arrayContaining(['{{steps.burn.output.messageId}}', '{{steps.attest.output.attestation}}']),
    });
  });

  it('names the parameter that is wrong', () => {
    expect(() =>
      bridgeTransfer({ actionId: 'x', from: 'chainA', to: 'chainB', token, amount: '1.5', recipient }),
    ).toThrow(PlanError);
    expect(() =>
      bridgeTransfer({ actionId: 'x', from: 'chainA', to: 'chainB', token, amount: '0', recipient }),
    ).toThrow(/amount: must be more than 0/);
  });
});

describe('RPC errors', () => {
  it('never carry the RPC URL (it may hold an API key) into the failure that history records', async () => {
    const { EvmAdapter } = await import('../../networks/evm/adapter');
    const { RpcError } = await import('../../networks/evm/errors');
    const rpcUrl = 'http://127.0.0.1:1/v3/secret-api-key';
    const evm = new EvmAdapter({
      network: 'chainA',
      chainId: 1,
      rpcUrls: [rpcUrl],
      send: true,
      signers: { bridge: KEY },
      policies: { bridge: {} },
      nonceOwners: memoryNonceOwners(),
    });
    const refs = [`0x${'ab'.repeat(32)}`];
    const error = await evm
      .check({
        actionId: 'a',
        stepId: 's',
        network: 'chainA',
        for: 'operation',
        attempt: 1,
        refs,
        finality: { confirmations: 1 },
      })
      .then(
        () => new Error('expected a failure'),
        (e: unknown) => e as Error,
      );
    expect(error).toBeInstanceOf(RpcError);
    expect(error.message).toMatch(/^chainA: /);
    expect(error.message).not.toContain('secret-api-key');
    expect(error.message).not.toContain('127.0.0.1:1');
  });
});
