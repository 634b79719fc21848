import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** The action's phase, kept current: find stuck runs with `SettlePhase = "needs_action"`. */
export const SettlePhase = defineSearchAttributeKey('SettlePhase', SearchAttributeType.KEYWORD);
export const SettleType = defineSearchAttributeKey('SettleType', SearchAttributeType.KEYWORD);
export const SettleNetworks = defineSearchAttributeKey('SettleNetworks', SearchAttributeType.KEYWORD_LIST);
/** Transaction hashes and other references, so an action can be found from any of its transactions. */
export const SettleRefs = defineSearchAttributeKey('SettleRefs', SearchAttributeType.KEYWORD_LIST);

export const SETTLE_SEARCH_ATTRIBUTES = [SettlePhase, SettleType, SettleNetworks, SettleRefs];

/** `--search-attribute` values for `temporal server start-dev`. */
export const SEARCH_ATTRIBUTE_FLAGS = [
  'SettlePhase=Keyword',
  'SettleType=Keyword',
  'SettleNetworks=KeywordList',
  'SettleRefs=KeywordList',
];
