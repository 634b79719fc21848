import { ActionSpecSchema, MAX_SPEC_BYTES } from '../../contract/action-spec';
import { initialState, SEARCH_ATTRIBUTE_BYTES, searchableRefs } from '../../workflows/machine/action';

const spec = ActionSpecSchema.parse({
  actionId: 'limits',
  steps: [
    { id: 'a', network: 'chainA', operation: { kind: 'await' } },
    { id: 'b', network: 'chainB', operation: { kind: 'await' } },
  ],
});

function ref(i: number, length = 66): string {
  return `0x${i.toString(16).padStart(length - 2, '0')}`;
}

describe('limits that keep a run from failing later', () => {
  it('publishes every ref while they fit in a search attribute value, and the current ones first past that', () => {
    const state = initialState(spec, {}, '2026-12-01T00:00:00Z');
    state.steps.a.operation.refs = [ref(1)];
    expect(searchableRefs(state)).toEqual([ref(1)]);
    // Eight 256-character refs are past Temporal's 2 KiB limit for a KeywordList value.
    state.steps.a.retiredRefs = Array.from({ length: 8 }, (_, i) => ref(100 + i, 256));
    state.steps.b.operation.refs = [ref(2)];
    const published = searchableRefs(state);
    expect(JSON.stringify(published).length).toBeLessThanOrEqual(SEARCH_ATTRIBUTE_BYTES);
    expect(published).toEqual(expect.arrayContaining([ref(1), ref(2)]));
    expect(published.length).toBeLessThan(10);
  });

  it('refuses at the start a spec too large to travel with the state across continue-as-new', () => {
    const description = 'x'.repeat(500);
    const steps = Array.from({ length: 64 }, (_, i) => ({
      id: `s${i}`,
      network: 'n',
      operation: { kind: 'await', description },
      acceptFrom: Array.from({ length: 16 }, (_, j) => `source-${j}-${'y'.repeat(180)}`),
    }));
    const result = ActionSpecSchema.safeParse({ actionId: 'huge', steps });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.message)).toContainEqual(
      expect.stringMatching(new RegExp(`an ActionSpec may be at most ${MAX_SPEC_BYTES}`)),
    );
  });
});
