/** Data loading: image/mask decoding, MVTec AD and folder dataset readers, seeded splits, dataset checks. */
export {
  DataError,
  IMAGENET_MEAN,
  IMAGENET_STD,
  JPEG_MASK_THRESHOLD,
  MIN_IMAGE_SIDE,
  decodeMaskValues,
  findBadFiles,
  loadImage,
  loadImageRgb8,
  loadMask,
  loadMaskForImage,
  loadMaskFull,
  maskAlignment,
  normalizeImagenet,
  probeImageFile,
  resizeNearest,
} from './image.js';
export type { ImageProbe, MaskValues, Rgb8Image } from './image.js';
export { IMAGE_EXTENSIONS, hasMasks, isImageFile, listImages, naturalCompare, readMvtecCategory } from './mvtec.js';
export type { MvtecCategory, ReadOptions, TestItem } from './mvtec.js';
export { holdOut } from './split.js';
export {
  DEFAULT_MASK_SUFFIX,
  DEFAULT_SPLIT,
  GENERIC_DIR_NAMES,
  applySavedSplit,
  commonAncestor,
  defectTypeOf,
  listFolderDataset,
  parseSavedSplit,
  readFolderDataset,
  readMvtecDataset,
  scanImageFolder,
  splitThree,
  splitToJson,
  validateFractions,
} from './folder.js';
export type { FolderListing, FolderScan, FolderSpec, IgnoredFile, SavedSplit, SplitDataset, SplitFractions } from './folder.js';
export { detectLayout, folderSpecFromFlags, parseSplitFractions, readDataset } from './dataset.js';
export type { DatasetOptions, DetectedLayout, FolderFlags } from './dataset.js';
export { checkDataset, describeMode, formatCheckReport } from './check.js';
export type { CheckOptions, CheckProblem, CheckReport, MaskStats, ModeCount, SizeStats } from './check.js';
