export * from './action-spec';
export * from './duration';
export * from './errors';
export * from './evidence';
export * from './validation';
export * from './primitives';
export * from './status';
export * from './updates';
