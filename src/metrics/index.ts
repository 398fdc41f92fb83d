/** Evaluation metrics: AUROC (image / pixel), AUPRO, F1-max. */
export { auroc, rocCurve } from './auroc.js';
export type { RocCurve } from './auroc.js';
export { aupro, proCurve, labelComponents, type ProCurve } from './aupro.js';
export { f1Max } from './f1.js';
export { BinnedAuroc, type BinnedAurocResult } from './binnedAuroc.js';
