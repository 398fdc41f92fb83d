/** Weight file I/O: PyTorch zip checkpoints, safetensors, and resolution of the ResNet18 teacher weights. */
export { parseSafetensors, readSafetensors, serializeSafetensors, type RawStateDict, type RawTensor } from './safetensors.js';
export { parsePth, readPth } from './pth.js';
export {
  RESNET18_SAFETENSORS_FILE,
  RESNET18_FILE,
  RESNET18_SHA256_PREFIX,
  RESNET18_URL,
  convertToSafetensors,
  defaultWeightsCacheDir,
  downloadVerified,
  isImagenetSha256,
  readWeightsFile,
  resnet18TrunkShapes,
  resolveResnet18Weights,
  sha256File,
  stripCommonPrefixes,
  validateResnet18Trunk,
  type ResolveWeightsOptions,
  type ResolvedWeights,
  type WeightsFile,
} from './resolve.js';
