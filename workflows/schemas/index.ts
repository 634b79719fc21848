export * from './action-spec';
export * from './duration';
export * from './evidence';
export * from './format-issues';
export * from './primitives';
export * from './status';
export * from './updates';
