import { parseWorkerConfig } from '../../workers/worker/config';

describe('the worker sticky cache setting', () => {
  it('is the SDK default when unset, and a whole number of workflows when set', () => {
    expect(parseWorkerConfig({}).SETTLE_WORKER_MAX_CACHED_WORKFLOWS).toBeUndefined();
    expect(parseWorkerConfig({ SETTLE_WORKER_MAX_CACHED_WORKFLOWS: '300' }).SETTLE_WORKER_MAX_CACHED_WORKFLOWS).toBe(
      300,
    );
    expect(parseWorkerConfig({ SETTLE_WORKER_MAX_CACHED_WORKFLOWS: '0' }).SETTLE_WORKER_MAX_CACHED_WORKFLOWS).toBe(0);
  });

  it.each(['-1', 'abc', '1.5', ''])('refuses %j, naming the setting and the rule', (value) => {
    expect(() => parseWorkerConfig({ SETTLE_WORKER_MAX_CACHED_WORKFLOWS: value })).toThrow(
      /SETTLE_WORKER_MAX_CACHED_WORKFLOWS.*whole number/s,
    );
  });
});
