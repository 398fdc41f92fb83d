/** Data loading: image/mask decoding, MVTec AD folder reader, seeded splits. */
export { DataError, IMAGENET_MEAN, IMAGENET_STD, loadImage, loadImageRgb8, loadMask, loadMaskFull, normalizeImagenet, resizeNearest } from './image.js';
export type { Rgb8Image } from './image.js';
export { IMAGE_EXTENSIONS, hasMasks, isImageFile, listImages, naturalCompare, readMvtecCategory } from './mvtec.js';
export type { MvtecCategory, TestItem } from './mvtec.js';
export { holdOut } from './split.js';
