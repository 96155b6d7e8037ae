export * from './format';
export * from './registry-index';
export * from './load';
