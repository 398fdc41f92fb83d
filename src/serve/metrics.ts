/** Prometheus metrics of `ntsnet serve` (prom-client, one registry per service). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's metrics. */
export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  latency: Histogram<'route'>;
  predictions: Counter<'model' | 'decision'>;
  batchSize: Histogram<'model'>;
  inference: Histogram<'model'>;
  errors: Counter<'code'>;
}

/**
 * Creates the registry: request counts and latency by route, predictions by decision, batch sizes and forward-pass
 * time by model, errors by code, queue depth by model and the live TF.js tensor count (read at scrape time), and
 * prom-client's process metrics (memory, CPU, event-loop lag).
 */
export function createMetrics(live: { queueDepth: () => Map<string, number>; inFlight: () => Map<string, number>; tensors: () => Promise<number> }): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ntsnet_' });
  const requests = new Counter({ name: 'ntsnet_http_requests_total', help: 'HTTP requests by route, method and status code', labelNames: ['route', 'method', 'status'] as const, registers: [registry] });
  const latency = new Histogram({
    name: 'ntsnet_http_request_duration_seconds', help: 'HTTP request latency (first byte received to response sent) by route', labelNames: ['route'] as const, registers: [registry],
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30],
  });
  const predictions = new Counter({ name: 'ntsnet_predictions_total', help: 'Images scored, by model and decision', labelNames: ['model', 'decision'] as const, registers: [registry] });
  const batchSize = new Histogram({ name: 'ntsnet_batch_size', help: 'Images per forward pass (micro-batching)', labelNames: ['model'] as const, buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] });
  const inference = new Histogram({ name: 'ntsnet_inference_duration_seconds', help: 'Forward-pass time per batch', labelNames: ['model'] as const, buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5], registers: [registry] });
  const errors = new Counter({ name: 'ntsnet_errors_total', help: 'Error responses by error code', labelNames: ['code'] as const, registers: [registry] });
  new Gauge({
    name: 'ntsnet_queue_depth', help: 'Requests waiting for a forward pass, by model', labelNames: ['model'] as const, registers: [registry],
    collect() { this.reset(); for (const [m, n] of live.queueDepth()) this.set({ model: m }, n); },
  });
  new Gauge({
    name: 'ntsnet_requests_in_flight', help: 'Predict requests admitted and not yet answered, by model (bounded by --max-queue)', labelNames: ['model'] as const, registers: [registry],
    collect() { this.reset(); for (const [m, n] of live.inFlight()) this.set({ model: m }, n); },
  });
  new Gauge({ name: 'ntsnet_tf_tensors', help: 'Live TF.js tensors (tf.memory().numTensors, inference threads included); constant between requests', registers: [registry], async collect() { this.set(await live.tensors()); } });
  return { registry, requests, latency, predictions, batchSize, inference, errors };
}
