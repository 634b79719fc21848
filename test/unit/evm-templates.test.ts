import { ApplicationFailure } from '@temporalio/common';
import { decodeFunctionData, keccak256, parseAbi, toBytes } from 'viem';
import { encodeOperation } from '../../networks/evm/encode';
import { parseFunction, toAbiArgs } from '../../networks/evm/abi-args';
import { actionIdHash, resolveTemplates } from '../../networks/evm/templates';
import { parseTemplate, templateExpressions, type TemplateContext } from '../../contract/templates';

const context: TemplateContext = {
  actionId: 'xfer-1',
  steps: {
    lock: {
      ref: '0x' + 'ab'.repeat(32),
      block: { number: '42', hash: '0x' + 'cd'.repeat(32) },
      output: { messageId: '0x' + '11'.repeat(32), amount: '1000', events: [{ name: 'Locked' }], nested: { x: '7' } },
    },
  },
};

function failureOf(run: () => unknown): ApplicationFailure {
  try {
    run();
  } catch (error) {
    return error as ApplicationFailure;
  }
  throw new Error('expected a failure');
}

describe('templates', () => {
  it('parses the grammar once for validation and resolution', () => {
    expect(templateExpressions('id:{{ action.id }}/{{steps.lock.output.a.b}}')).toEqual([
      'action.id',
      'steps.lock.output.a.b',
    ]);
    expect(parseTemplate('action.idHash')).toEqual({ kind: 'action.idHash' });
    expect(parseTemplate('steps.lock.ref')).toEqual({ kind: 'step.ref', step: 'lock' });
    expect(parseTemplate('steps.lock.block')).toEqual({ kind: 'step.block', step: 'lock' });
    expect(parseTemplate('steps.lock.output.a.b')).toEqual({ kind: 'step.output', step: 'lock', field: 'a.b' });
    expect(parseTemplate('steps.lock.address')).toBeUndefined();
    expect(parseTemplate('action.secret')).toBeUndefined();
  });

  it('hashes the action id as keccak256 of its bytes', () => {
    expect(actionIdHash('xfer-1')).toBe(keccak256(toBytes('xfer-1')));
    expect(resolveTemplates('{{action.idHash}}', context)).toBe(actionIdHash('xfer-1'));
    expect(resolveTemplates('{{ action.id }}', context)).toBe('xfer-1');
  });

  it('reads refs, blocks and outputs of earlier steps, nested ones too', () => {
    expect(resolveTemplates('{{steps.lock.ref}}', context)).toBe(context.steps.lock.ref);
    expect(resolveTemplates('{{steps.lock.block}}', context)).toBe('42');
    expect(resolveTemplates('{{steps.lock.output.messageId}}', context)).toBe('0x' + '11'.repeat(32));
    expect(resolveTemplates('{{steps.lock.output.nested.x}}', context)).toBe('7');
    expect(resolveTemplates(['{{steps.lock.output.amount}}', 'id:{{action.id}}'], context)).toEqual([
      '1000',
      'id:xfer-1',
    ]);
  });

  it('refuses, non-retryably, a template with no value', () => {
    const failure = failureOf(() => resolveTemplates('{{steps.lock.output.missing}}', context));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe('InvalidOperation');
    expect(failure.nonRetryable).toBe(true);
    expect(failureOf(() => resolveTemplates('{{steps.mint.ref}}', context)).message).toMatch(/unknown step "mint"/);
  });
});

describe('ABI arguments', () => {
  const fn = parseFunction('function lock(bytes32 actionId, address recipient, uint256 amount)');

  it('turns decimal strings into integers and keeps addresses and bytes', () => {
    expect(toAbiArgs(fn, ['0x' + '00'.repeat(32), '0x' + '12'.repeat(20), '1000000000000000000000000'])).toEqual([
      '0x' + '00'.repeat(32),
      '0x' + '12'.repeat(20),
      10n ** 24n,
    ]);
  });

  it('names the argument and the rule when an argument does not fit', () => {
    expect(failureOf(() => toAbiArgs(fn, ['0x00', '0x' + '12'.repeat(20), '1'])).message).toBe(
      'args[0]: bytes32 needs 0x-prefixed hex of 32 bytes',
    );
    expect(failureOf(() => toAbiArgs(fn, ['0x' + '00'.repeat(32), 'alice', '1'])).message).toMatch(
      /^args\[1\]: address/,
    );
    expect(failureOf(() => toAbiArgs(fn, ['0x' + '00'.repeat(32), '0x' + '12'.repeat(20), '1.5'])).message).toMatch(
      /^args\[2\]: uint256 needs a decimal string/,
    );
    expect(failureOf(() => toAbiArgs(fn, [])).message).toMatch(/takes 3 arguments, got 0/);
    expect(failureOf(() => parseFunction('event Locked(bytes32 id)')).type).toBe('InvalidOperation');
  });

  it('encodes an operation with its templates resolved', () => {
    const call = encodeOperation(
      {
        kind: 'evm.call',
        signer: 'bridge',
        to: '0x' + '99'.repeat(20),
        function: 'function mint(bytes32 actionId, address recipient, uint256 amount)',
        args: ['{{action.idHash}}', '0x' + '12'.repeat(20), '{{steps.lock.output.amount}}'],
      },
      context,
    );
    const decoded = decodeFunctionData({
      abi: parseAbi(['function mint(bytes32 actionId, address recipient, uint256 amount)']),
      data: call.data!,
    });
    expect(decoded.args).toEqual([actionIdHash('xfer-1'), '0x' + '12'.repeat(20), 1000n]);
    expect(call.value).toBe(0n);
    expect(
      encodeOperation({ kind: 'evm.transfer', signer: 'bridge', to: '0x' + '99'.repeat(20), value: '5' }, context),
    ).toEqual({ to: '0x' + '99'.repeat(20), value: 5n });
  });
});
