export * from './format';
export * from './registry-index';
export * from './load';
export * from './store';
export * from './file-backend';
export * from './redis-backend';
export * from './admin';
