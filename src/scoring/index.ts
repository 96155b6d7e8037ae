export * from './reasons';
export * from './policy';
export * from './signals';
export * from './decide';
export * from './behaviour';
