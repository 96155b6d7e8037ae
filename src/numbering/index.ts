/** The numbering room's public surface: Ofcom's data read, imported, loaded and looked up. */
export { importOfcomFolder, loadNumbering, NUMBERING_FILE, writeNumbering, type NumberingImport } from './load';
export { compact, NumberingDataError, NumberingIndex, unallocatedReason, type NumberingProvenance, type RangeStatus } from './numbering-index';
export { decodeOfcomFile, normaliseStatus, OfcomFormatError, parseOfcomCsv } from './ofcom-csv';
