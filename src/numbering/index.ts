export * from './ofcom-csv';
export * from './numbering-index';
export * from './load';
