/** Evaluation metrics. */
export { auroc, rocCurve } from './auroc.js';
export type { RocCurve } from './auroc.js';
