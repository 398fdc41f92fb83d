import type { ModelConfig } from '../model/config.js';
import { studentShapes, teacherShapes } from '../model/networks.js';

/**
 * Convolution GFLOP of one image through the teacher and a plain (`basic`) student at the model's image size:
 * 2 x k x k x Cin x Cout x h_out x w_out per convolution (a multiply-add counted as 2), from the torchvision trunk's
 * shapes (conv1 at S/2, layerL at S/2^(L+1)). BatchNorm, ReLU, pooling and the anomaly map (under 1 % of the work)
 * are left out. `undefined` for a CoT student, whose attention and windowed aggregation are not convolutions.
 */
export function convGflopPerImage(cfg: ModelConfig): number | undefined {
  if (cfg.studentBlock !== 'basic') return undefined;
  const S = cfg.imageSize;
  let flop = 0;
  for (const shapes of [teacherShapes(cfg), studentShapes(cfg)]) {
    for (const [name, shape] of shapes) {
      if (shape.length !== 4) continue;
      const stage = /^layer(\d)\./.exec(name);
      const side = Math.ceil(S / 2 ** (stage ? Number(stage[1]) + 1 : 1));
      const [kh, kw, cin, cout] = shape as [number, number, number, number];
      flop += 2 * kh * kw * cin * cout * side * side;
    }
  }
  return flop / 1e9;
}
