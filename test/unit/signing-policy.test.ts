/**
 * The signing policy: what a signer may sign, checked on the decoded transaction (never on the step's own strings), and
 * refused at start-up when a signer that may send has none.
 */
import { ApplicationFailure } from '@temporalio/common';
import { concat, encodeFunctionData, pad, parseAbiItem, toFunctionSelector, type AbiFunction, type Hex } from 'viem';
import {
  BURN_FUNCTION,
  LOCK_FUNCTION,
  MINT_ATTESTED_FUNCTION,
  MINT_FUNCTION,
  UNLOCK_FUNCTION,
} from '../../client/plans';
import { localBridgePolicy } from '../../devnet/chains';
import { ConfigError, parseNetworksFile } from '../../networks/config';
import { EvmAdapter } from '../../networks/evm/adapter';
import { memoryNonceOwners } from '../../networks/evm/nonce-owner';
import { SigningGuard } from '../../networks/evm/signing-guard';
import {
  checkCall,
  compilePolicy,
  SignerPolicySchema,
  type SignerPolicyInput,
} from '../../networks/evm/signing-policy';

const KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const contracts = {
  token: '0x5fbdb2315678afecb367f032d93f642f64180aa3',
  escrow: '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512',
  minter: '0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0',
} as const satisfies Record<string, Hex>;
const USER: Hex = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';
const ID: Hex = `0x${'ab'.repeat(32)}`;
const ETH = 10n ** 18n;

const compiled = (policy: SignerPolicyInput = localBridgePolicy(contracts)) =>
  compilePolicy(SignerPolicySchema.parse(policy), { signer: 'bridge', network: 'chainB' });
const call = (fn: string, args: unknown[]) => {
  const item = parseAbiItem(fn) as AbiFunction;
  return encodeFunctionData({ abi: [item], functionName: item.name, args });
};
const messageOf = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
};
const refusal = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return error as ApplicationFailure;
  }
  throw new Error('expected a refusal');
};

describe('the signing policy', () => {
  const policy = compiled();

  it('allows the bridge entry points and says what each spends on its budgeted route', () => {
    const lock = call(LOCK_FUNCTION, [ID, USER, 1000n]);
    expect(checkCall(policy, { to: contracts.escrow, data: lock, value: 0n })).toEqual([
      {
        route: `${contracts.escrow}:lock(bytes32,address,uint256)`,
        amount: '1000',
        limit: '100000000',
        windowMs: 3_600_000,
      },
    ]);
    expect(checkCall(policy, { to: contracts.escrow, data: call(UNLOCK_FUNCTION, [ID]), value: 0n })).toEqual([]);
    for (const [to, data] of [
      [contracts.escrow, call(BURN_FUNCTION, [ID, USER, 5n])],
      [contracts.minter, call(MINT_FUNCTION, [ID, USER, 1000n])],
      [contracts.minter, call(MINT_ATTESTED_FUNCTION, [ID, USER, 250n, ID, '0xa77e57'])],
    ] as const) {
      expect(checkCall(policy, { to, data, value: 0n })).toHaveLength(1);
    }
  });

  it('refuses a contract outside the policy, naming the signer, the chain, the contract and the function', () => {
    const transfer = call('function transfer(address to, uint256 amount)', [USER, 1n]);
    const error = refusal(() =>
      checkCall(
        policy,
        { to: contracts.token, data: transfer, value: 0n },
        'function transfer(address to, uint256 amount)',
      ),
    );
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'PolicyViolation', nonRetryable: true });
    expect(error.message).toBe(
      `policy: bridge on chainB may not call ${contracts.token}:transfer(address,uint256) (the contract is not in its policy)`,
    );
  });

  it('refuses a function the policy does not list on an allowed contract, by its selector when nothing names it', () => {
    const mint = call('function mint(address to, uint256 amount)', [USER, 1n]);
    const error = refusal(() => checkCall(policy, { to: contracts.minter, data: mint, value: 0n }));
    expect(error.message).toBe(
      `policy: bridge on chainB may not call ${contracts.minter}:${toFunctionSelector('mint(address,uint256)')} ` +
        '(the function is not allowed there)',
    );
  });

  it('refuses a legitimate entry point called with an absurd amount, like a forbidden function', () => {
    const data = call(MINT_FUNCTION, [ID, USER, 10n ** 30n]);
    expect(refusal(() => checkCall(policy, { to: contracts.minter, data, value: 0n }))).toMatchObject({
      type: 'PolicyViolation',
      message: 'policy: mint amount 10^30 is over the cap 1000000 for bridge on chainB',
    });
    expect(() =>
      checkCall(policy, { to: contracts.minter, data: call(MINT_FUNCTION, [ID, USER, 1_000_000n]), value: 0n }),
    ).not.toThrow();
  });

  it('reads the amount from the calldata with the policy’s own signature, whatever the step calls its arguments', () => {
    // Same selector, arguments renamed by the step: the third argument is still the amount the policy caps.
    const renamed = call('function mint(bytes32 actionId, address recipient, uint256 fee)', [ID, USER, 10n ** 30n]);
    expect(refusal(() => checkCall(policy, { to: contracts.minter, data: renamed, value: 0n })).message).toMatch(
      /mint amount 10\^30 is over the cap/,
    );
  });

  it('refuses calldata that is not the canonical encoding of the allowed call (dirty bits, trailing bytes)', () => {
    const clean = call(LOCK_FUNCTION, [ID, USER, 10n]);
    // The address word with a high byte set: a lax decoder would read the same address.
    const dirty = (clean.slice(0, 10 + 64) + 'ff' + clean.slice(10 + 64 + 2)) as Hex;
    expect(refusal(() => checkCall(policy, { to: contracts.escrow, data: dirty, value: 0n })).message).toMatch(
      /does not decode as lock\(bytes32,address,uint256\)|is not its canonical encoding/,
    );
    const trailing = concat([clean, pad('0x01')]);
    expect(refusal(() => checkCall(policy, { to: contracts.escrow, data: trailing, value: 0n })).message).toBe(
      `policy: the calldata for ${contracts.escrow}:lock(bytes32,address,uint256) is not its canonical encoding`,
    );
  });

  it('allows native transfers up to the cap to the listed destinations only, and none without a native rule', () => {
    expect(checkCall(policy, { to: USER, value: ETH })).toEqual([
      { route: 'native', amount: ETH.toString(), limit: (100n * ETH).toString(), windowMs: 3_600_000 },
    ]);
    expect(refusal(() => checkCall(policy, { to: USER, value: 2n * ETH })).message).toBe(
      `policy: native value 2000000000000000000 wei is over the cap ${ETH} for bridge on chainB`,
    );
    const listed = compiled({ native: { to: [contracts.escrow], max: '10' } });
    expect(checkCall(listed, { to: contracts.escrow, value: 10n })).toEqual([]);
    expect(refusal(() => checkCall(listed, { to: USER, value: 1n })).message).toBe(
      `policy: bridge on chainB may not send native value to ${USER} (not a listed destination)`,
    );
    const none = compiled({ contracts: {} });
    expect(refusal(() => checkCall(none, { to: USER, value: 1n })).message).toMatch(/may not send native value/);
    // Value sent along an allowed call is a native transfer too.
    const lock = call(LOCK_FUNCTION, [ID, USER, 10n]);
    expect(
      refusal(() =>
        checkCall(compiled({ contracts: localBridgePolicy(contracts).contracts }), {
          to: contracts.escrow,
          data: lock,
          value: 1n,
        }),
      ).message,
    ).toMatch(/may not send native value/);
  });

  it('refuses one call bigger than its whole budget (it could never fit), and allows a bare selector undecoded', () => {
    const small = compiled({
      contracts: {
        [contracts.minter]: {
          functions: [
            {
              function: MINT_FUNCTION,
              amount: { arg: 'amount', max: '5000', budget: { limit: '3000', window: '10s' } },
            },
            { selector: '0x12345678' },
          ],
        },
      },
    });
    expect(
      refusal(() => checkCall(small, { to: contracts.minter, data: call(MINT_FUNCTION, [ID, USER, 4000n]), value: 0n }))
        .message,
    ).toBe('policy: mint amount 4000 is over the whole budget 3000 per 10s for bridge on chainB');
    expect(checkCall(small, { to: contracts.minter, data: '0x12345678abcd', value: 0n })).toEqual([]);
  });
});

describe('policies in the networks file', () => {
  const network = {
    kind: 'evm',
    chainId: 31338,
    rpcUrls: ['http://127.0.0.1:8546'],
    finality: { confirmations: 2 },
    blockTime: '1s',
    send: true,
    signers: ['bridge'],
  };
  const file = (chainB: object) =>
    JSON.stringify({ networks: { chainB: { ...network, ...chainB } }, signers: { bridge: { keyEnv: 'K' } } });

  it('refuses at start-up a signer that may send without a policy, and a policy for a signer the network lacks', () => {
    expect(() => parseNetworksFile(file({}), 'cfg.json')).toThrow(
      /networks\.chainB\.policies\.bridge: signer "bridge" may send on chainB but has no signing policy/,
    );
    expect(() => parseNetworksFile(file({ policies: { bridge: {}, ops: {} } }))).toThrow(
      /networks\.chainB\.policies\.ops: a policy for "ops", which is not one of this network's signers/,
    );
    // A network that never sends needs none.
    expect(() => parseNetworksFile(file({ send: false }))).not.toThrow();
  });

  it('names the field and the rule of a policy that cannot be compiled', () => {
    const bad = {
      contracts: {
        [contracts.minter]: {
          functions: [
            { function: 'function mint(bytes32 id, address to, uint256 amount' },
            { function: 'function unlock(bytes32 actionId)', amount: { arg: 'actionId', max: '1' } },
            { function: UNLOCK_FUNCTION },
            { function: UNLOCK_FUNCTION },
            { selector: '0x1234' },
          ],
        },
        '0xnope': { functions: [] },
      },
      native: { to: 'anyone', max: '1' },
    };
    const error = messageOf(() => parseNetworksFile(file({ policies: { bridge: bad } })));
    const at = `networks.chainB.policies.bridge.contracts.${contracts.minter}.functions`;
    expect(error).toContain(`${at}[0].function: cannot parse`);
    expect(error).toContain(`${at}[1].amount.arg: "actionId" is not a uint argument of unlock(bytes32)`);
    expect(error).toContain(`${at}[4].selector: must be a 4-byte selector`);
    expect(error).toContain('networks.chainB.policies.bridge.contracts.0xnope');
    expect(error).toContain('networks.chainB.policies.bridge.native.to: must be "any" or a list of addresses');
    const twice = {
      contracts: { [contracts.minter]: { functions: [{ function: UNLOCK_FUNCTION }, { function: UNLOCK_FUNCTION }] } },
    };
    expect(messageOf(() => parseNetworksFile(file({ policies: { bridge: twice } })))).toContain(
      `${at}[1]: selector ${toFunctionSelector('unlock(bytes32)')} is listed twice`,
    );
  });

  it('never builds an adapter that could sign for a signer without a policy', () => {
    const options = {
      network: 'chainB',
      chainId: 31338,
      rpcUrls: ['http://127.0.0.1:1'],
      signers: { bridge: KEY as Hex },
      nonceOwners: memoryNonceOwners(),
    };
    expect(() => new EvmAdapter({ ...options, send: true, policies: {} })).toThrow(ConfigError);
    expect(() => new EvmAdapter({ ...options, send: true, policies: {} })).toThrow(
      'networks.chainB.policies.bridge: signer "bridge" may send on chainB but has no signing policy',
    );
    expect(() => new EvmAdapter({ ...options, send: false, policies: {} })).not.toThrow();
    const guard = new SigningGuard({ network: 'chainB', send: false, signers: { bridge: KEY }, policies: {} });
    expect(refusal(() => guard.check('bridge', { to: USER, value: 1n })).message).toBe(
      'policy: bridge on chainB has no signing policy',
    );
  });

  it('says when a route waiting for budget will have room', () => {
    const guard = new SigningGuard({
      network: 'chainB',
      send: true,
      signers: { bridge: KEY },
      policies: { bridge: localBridgePolicy(contracts) },
    });
    const availableAt = new Date(Date.now() + 9_500).toISOString();
    const waiting = guard.waiting('bridge', {
      route: `${contracts.minter}:mint(bytes32,address,uint256)`,
      amount: '1000',
      limit: '2500',
      used: '2000',
      windowMs: 10_000,
      pending: 0,
      availableAt,
    });
    expect(waiting).toMatchObject({ type: 'BudgetExhausted', nonRetryable: false });
    expect(waiting.message).toBe(
      `waiting for budget: minter ${contracts.minter}:mint(bytes32,address,uint256) for bridge on chainB has 2000 of ` +
        `2500 per 10s spent or pending, and this call needs 1000; the window allows it at ${availableAt} (in 10 s)`,
    );
  });
});
