/**
 * Browser runtime of an ntsnet web export (`ntsnet export CHECKPOINT --format web --out DIR`, docs/export.md).
 * Bundled with esbuild into `ntsnet-web.js` (an ES module that includes @tensorflow/tfjs); it runs the same model code
 * as ntsnet itself (src/model: teacher and student forward passes, anomaly map) on TF.js's WebGL backend when
 * available, else the pure-JS cpu backend.
 *
 * ```js
 * import { loadModel } from './ntsnet-web.js';
 * const model = await loadModel('model.json');          // fetches model.json and weights.bin next to it
 * const r = await model.predict(document.querySelector('img'));
 * r.scores[0], r.anomalous[0], r.maps                    // maps: [batch, S, S] float32, row-major
 * ```
 */
import * as tf from '@tensorflow/tfjs';
import type { Tensor4D, Variable } from '@tensorflow/tfjs-node';
import type { Tf } from '../backend/index.js';
import type { ModelConfig } from '../model/config.js';
import { NTSNet } from '../model/ntsnet.js';
import type { ParamMap } from '../model/params.js';

/** One tensor of weights.bin (float32 little-endian, TF layout: convolution filters HWIO). */
export interface WebTensorEntry {
  /** `teacher` or `student` network. */
  net: 'teacher' | 'student';
  /** Parameter name, e.g. `layer1.0.conv1.weight`. */
  name: string;
  shape: number[];
  /** Byte offset in weights.bin (multiple of 4). */
  offset: number;
  /** Number of float32 values. */
  length: number;
}

/** model.json of a web export. */
export interface WebModelJson {
  format: 'ntsnet-web';
  version: 1;
  ntsnetVersion: string;
  createdAt: string;
  model: ModelConfig;
  preprocessing: { size: [number, number]; channelOrder: 'RGB'; scale: number; mean: number[]; std: number[]; formula: string; resize: string; notes: string[] };
  thresholds: { image: number; pixel: number; imageSource: string; pixelSource: string; rule: string; notes: string[] } | null;
  weights: { file: string; dtype: 'float32'; byteLength: number; layout: string; tensors: WebTensorEntry[] };
  checkpoint?: unknown;
}

/** Input of {@link WebModel.predict}. */
export type WebInput =
  | Float32Array // ImageNet-normalised NHWC batch [b, S, S, 3]
  | ImageData
  | HTMLImageElement
  | HTMLCanvasElement
  | ImageBitmap
  | (ImageData | HTMLImageElement | HTMLCanvasElement | ImageBitmap)[];

/** Output of {@link WebModel.predict}. */
export interface WebPrediction {
  /** Image scores [batch] (anomaly-map maximum). */
  scores: Float32Array;
  /** Anomaly maps [batch, S, S], row-major. */
  maps: Float32Array;
  batch: number;
  size: number;
  /** score > thresholds.image (empty when the export has no thresholds). */
  anomalous: boolean[];
  /** Milliseconds of the forward pass including reading the results back. */
  ms: number;
}

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /** TF.js backend: `webgl` (default when available, else `cpu`) or `cpu`. */
  backend?: 'webgl' | 'cpu';
  /** fetch replacement (tests, custom loading). */
  fetch?: typeof fetch;
}

/** A loaded web model. Call {@link WebModel.dispose} to free its tensors. */
export class WebModel {
  constructor(
    readonly json: WebModelJson,
    private readonly net: NTSNet,
    /** The TF.js backend in use. */
    readonly backend: string,
  ) {}

  /** Square input size S in pixels. */
  get size(): number {
    return this.json.model.imageSize;
  }

  /**
   * Converts images to the model input: RGB, bilinear resize to S x S (aspect ratio not kept, half-pixel centres),
   * (v / 255 - mean) / std. Browsers decode and resize slightly differently from ntsnet's libvips, so scores of
   * decoded images differ a little from `ntsnet predict`; Float32Array inputs are used as they are.
   */
  preprocess(input: Exclude<WebInput, Float32Array>): Tensor4D {
    const list = Array.isArray(input) ? input : [input];
    const S = this.size;
    const { mean, std } = this.json.preprocessing;
    return tf.tidy(() => {
      const imgs = list.map((im) => {
        const px = tf.browser.fromPixels(im as ImageData, 3).toFloat();
        return tf.image.resizeBilinear(px as tf.Tensor3D, [S, S], false, true);
      });
      const x = tf.stack(imgs).div(255).sub(tf.tensor1d(mean)).div(tf.tensor1d(std));
      return x as unknown as Tensor4D;
    });
  }

  /** Scores images, or an ImageNet-normalised float32 NHWC batch [b, S, S, 3]. */
  async predict(input: WebInput): Promise<WebPrediction> {
    const S = this.size;
    let x: Tensor4D;
    if (input instanceof Float32Array) {
      if (input.length % (S * S * 3) !== 0 || input.length === 0) throw new Error(`predict: ${input.length} values are not a [b, ${S}, ${S}, 3] batch`);
      x = tf.tensor4d(input, [input.length / (S * S * 3), S, S, 3]) as unknown as Tensor4D;
    } else x = this.preprocess(input);
    const t0 = performance.now();
    const batch = x.shape[0];
    const p = this.net.predict(x);
    const [maps, scores] = await Promise.all([p.maps.data(), p.scores.data()]);
    const ms = performance.now() - t0;
    x.dispose(); p.maps.dispose(); p.scores.dispose();
    const th = this.json.thresholds;
    const sc = Float32Array.from(scores as Float32Array);
    return { scores: sc, maps: Float32Array.from(maps as Float32Array), batch, size: S, anomalous: th ? Array.from(sc, (v) => v > th.image) : [], ms };
  }

  /** Frees the weights. */
  dispose(): void {
    this.net.dispose();
  }
}

/** Picks the backend: the requested one, else WebGL when it initialises, else cpu. @returns the active backend. */
export async function selectBackend(want?: 'webgl' | 'cpu'): Promise<string> {
  for (const b of want ? [want] : ['webgl', 'cpu']) {
    try {
      if (await tf.setBackend(b)) {
        await tf.ready();
        return tf.getBackend();
      }
    } catch {
      /* try the next one */
    }
  }
  throw new Error(`no TF.js backend could be initialised (tried ${want ?? 'webgl, cpu'})`);
}

/** Builds the network from model.json and the bytes of weights.bin. */
export function modelFromWeights(json: WebModelJson, weights: ArrayBuffer, backend = tf.getBackend()): WebModel {
  if (json.format !== 'ntsnet-web') throw new Error(`not an ntsnet web export (format ${String(json.format)})`);
  if (weights.byteLength !== json.weights.byteLength) throw new Error(`weights.bin has ${weights.byteLength} bytes, model.json expects ${json.weights.byteLength}`);
  const teacher: ParamMap = new Map(), student: ParamMap = new Map();
  for (const e of json.weights.tensors) {
    const data = new Float32Array(weights, e.offset, e.length);
    (e.net === 'teacher' ? teacher : student).set(e.name, tf.variable(tf.tensor(data, e.shape, 'float32'), false) as unknown as Variable);
  }
  return new WebModel(json, new NTSNet(tf as unknown as Tf, json.model, teacher, student), backend);
}

/**
 * Loads a web export: fetches `url` (model.json) and its weights file (relative to it), selects the backend and builds
 * the model.
 */
export async function loadModel(url: string | URL, opts: LoadOptions = {}): Promise<WebModel> {
  const f = opts.fetch ?? fetch;
  const base = new URL(String(url), globalThis.location?.href);
  const res = await f(base.href);
  if (!res.ok) throw new Error(`cannot fetch ${base.href}: HTTP ${res.status}`);
  const json = (await res.json()) as WebModelJson;
  const wurl = new URL(json.weights.file, base);
  const wres = await f(wurl.href);
  if (!wres.ok) throw new Error(`cannot fetch ${wurl.href}: HTTP ${wres.status}`);
  const weights = await wres.arrayBuffer();
  const backend = await selectBackend(opts.backend);
  return modelFromWeights(json, weights, backend);
}

export { tf };
