/**
 * ntsnet: unsupervised industrial image anomaly detection with the NTSNet asymmetric teacher-student network
 * (Kong et al. 2024) on TensorFlow.js (native Node backend).
 */
export { loadTf, BackendError, type Tf } from './backend/index.js';
export { DEFAULT_MODEL_CONFIG, validateModelConfig, type ModelConfig, type LayerId } from './model/config.js';
export { NTSNet, type Prediction, type StepOptions } from './model/ntsnet.js';
export { anomalyMap, gaussianBlur } from './model/anomalyMap.js';
export { ntsLoss, layerDistance } from './model/loss.js';
export { emanUpdate, emanPairs } from './model/eman.js';
export { cotForward } from './model/cot.js';
export * from './model/weights/index.js';
export { PRESETS, preset, validateRunConfig, type RunConfig, type TrainConfig } from './engine/config.js';
export { fit, type FitOptions, type FitResult, type EpochRecord } from './engine/fit.js';
export { evaluate, metricsTable, writeResults, type EvalResult, type ImageResult } from './engine/evaluate.js';
export { predictImages, collectImages, collectInspectionInputs, readImageList, type PredictedImage, type InspectionInputs } from './engine/predict.js';
export {
  inspectImages, effectiveThresholds, encodeMapPng16, encodeNpyFloat32, predictionsCsv,
  type InspectOptions, type InspectionSummary, type InspectedImage, type InspectionFiles, type EffectiveThresholds, type MapFormat,
} from './engine/inspect.js';
export {
  computeThresholds, normalTailThreshold, f1OptimalThreshold, quantile, DEFAULT_THRESHOLD_RULE,
  type Thresholds, type ThresholdRule, type CalibrationInput,
} from './engine/threshold.js';
export { Detector, type DetectorConfig, type DetectorFitOptions, type DetectorLoadOptions, type DetectorResult } from './api/detector.js';
export { loadCheckpoint, saveCheckpoint, readCheckpointMeta, type CheckpointMeta } from './engine/checkpoint.js';
export { measureInference, type SpeedResult } from './engine/speed.js';
export { readMvtecCategory, holdOut, loadImage, loadMask, type MvtecCategory, type TestItem } from './data/index.js';
export { auroc, rocCurve, type RocCurve } from './metrics/index.js';
