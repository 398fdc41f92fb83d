/**
 * The HTTP API of `ntsnet serve` as a Fastify application: JSON schemas on every route (validation and the OpenAPI
 * document at /openapi.json), Prometheus metrics, admission control (a bounded queue per model), an optional API key
 * and JSON errors that say how to fix the request. Routes: docs/deploy.md.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import type { Tf } from '../backend/index.js';
import { NTSNET_VERSION } from '../engine/paths.js';
import { QueueTimeoutError, RequestAbortedError } from './batcher.js';
import { HttpError, IMAGE_MEDIA_TYPES, UploadDecoder, mapPng16, overlayPng } from './image.js';
import { createMetrics, type ServeMetrics } from './metrics.js';
import type { ServedModel } from './models.js';
import { PAGE_HTML, PAGE_JS } from './page.js';

/** Limits and switches of the service. */
export interface ServeLimits {
  /** Largest request body in bytes (raw or multipart file). */
  bodyLimit: number;
  /** Largest image in pixels (width x height of the header), checked before decoding. */
  maxPixels: number;
  /** Predict requests admitted per model and not yet answered; beyond it 503 + Retry-After. */
  maxQueue: number;
  /** Longest time a predict request may take before it gets 504, in ms. */
  timeoutMs: number;
  /** When set, /v1/* needs `Authorization: Bearer KEY` or `X-API-Key: KEY`. */
  apiKey?: string;
}

/** Options of {@link buildApp}. */
export interface AppOptions extends ServeLimits {
  tf: Tf;
  models: Map<string, ServedModel>;
  /** Fastify's logger (default off). */
  logger?: boolean;
  /** Where internal errors (500) are reported, one line each (default: stderr). */
  log?: (line: string) => void;
}

/** What {@link buildApp} returns: the Fastify app and the service state the CLI needs. */
export interface ServeApp {
  app: FastifyInstance;
  metrics: ServeMetrics;
  /** Marks the service as shutting down: /readyz answers 503 and new predict requests get 503. */
  startDraining(): void;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  499: 'Client Closed Request', 500: 'Internal Server Error', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** The JSON body of every error response. */
const errorBody = (status: number, code: string, message: string): { statusCode: number; error: string; code: string; message: string } => ({ statusCode: status, error: REASONS[status] ?? 'Error', code, message });

/** 415 for a body that is not an image (any Content-Type the image parsers do not take, application/json included). */
const notAnImage = (req: FastifyRequest): HttpError =>
  new HttpError(415, 'unsupported_media_type', `Content-Type '${req.headers['content-type'] ?? '(none)'}' is not an image. Send the image bytes with Content-Type ${IMAGE_MEDIA_TYPES.join(', ')}, or multipart/form-data with one file field.`);

/** 400 for a multipart body that cannot be parsed (no boundary, cut short). */
const badMultipart = (detail: string): HttpError =>
  new HttpError(400, 'bad_multipart', `The multipart request cannot be read (${detail}). Send multipart/form-data with a boundary and one complete file field (e.g. curl -F file=@image.png).`);

const errorSchema = {
  type: 'object',
  description: 'Every error: the HTTP status, a stable machine-readable code, and a message that says how to fix the request.',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, code: { type: 'string' }, message: { type: 'string' } },
  required: ['statusCode', 'error', 'code', 'message'],
} as const;

const teacherSchema = {
  type: 'object',
  description: 'Teacher identity recorded in the checkpoint (file name, SHA-256, ImageNet or not)',
  properties: { source: { type: 'string' }, sha256: { type: ['string', 'null'] }, imagenet: { type: 'boolean' }, form: { type: 'string' }, description: { type: 'string' } },
  additionalProperties: true,
} as const;

const modelIdentitySchema = {
  type: 'object',
  properties: {
    name: { type: 'string' }, sha256: { type: 'string', description: 'SHA-256 of model.safetensors' }, createdAt: { type: 'string' },
    preset: { type: 'string' }, imageSize: { type: 'integer' }, ntsnetVersion: { type: 'string' },
  },
} as const;

const predictResponse = {
  type: 'object',
  properties: {
    model: modelIdentitySchema,
    teacher: teacherSchema,
    engine: { type: 'string', enum: ['tfjs-node', 'onnxruntime-node'] },
    score: { type: 'number', description: 'raw image score (anomaly-map maximum)' },
    normalizedScore: { type: 'number', description: 'score / threshold (1.0 = at the threshold)' },
    decision: { type: 'string', enum: ['normal', 'anomalous'] },
    threshold: { type: 'number', description: 'image threshold applied (raw score units)' },
    pixelThreshold: { type: 'number' },
    thresholdSource: { type: 'string' },
    image: { type: 'object', properties: { width: { type: 'integer' }, height: { type: 'integer' } } },
    batchSize: { type: 'integer', description: 'images in the forward pass this image was part of' },
    latencyMs: {
      type: 'object',
      properties: { total: { type: 'number' }, decode: { type: 'number' }, queue: { type: 'number' }, inference: { type: 'number' } },
    },
    map: {
      type: 'object',
      description: 'present with ?map=png16 (anomaly map at model resolution, 16-bit grey, map = value / 65535 * fullScale) or ?map=overlay (heat map over the image at its own size)',
      properties: {
        format: { type: 'string', enum: ['png16', 'overlay'] }, contentType: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' },
        fullScale: { type: 'number' }, base64: { type: 'string' },
      },
    },
  },
  required: ['model', 'engine', 'score', 'normalizedScore', 'decision', 'threshold', 'latencyMs'],
} as const;

const modelsResponse = {
  type: 'object',
  properties: {
    models: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' }, engine: { type: 'string' }, imageSize: { type: 'integer' },
          thresholds: { type: 'object', properties: { image: { type: 'number' }, pixel: { type: 'number' }, imageSource: { type: 'string' }, pixelSource: { type: 'string' } } },
          teacher: teacherSchema, checkpoint: modelIdentitySchema,
          batching: { type: 'object', properties: { maxBatch: { type: 'integer' }, maxWaitMs: { type: 'number' } } },
          queueDepth: { type: 'integer' },
        },
      },
    },
  },
} as const;

const errors = (...codes: number[]): Record<number, typeof errorSchema> => Object.fromEntries(codes.map((c) => [c, errorSchema]));

interface PredictRoute {
  Params: { name: string };
  Querystring: { map?: 'none' | 'png16' | 'overlay' };
}

function sameSecret(a: string, b: string): boolean {
  const h = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** The API key a request carries (`Authorization: Bearer KEY` or `X-API-Key: KEY`), if any. */
function requestKey(req: FastifyRequest): string | undefined {
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x) return x;
  const a = req.headers.authorization;
  const m = typeof a === 'string' ? /^Bearer\s+(.+)$/i.exec(a.trim()) : null;
  return m?.[1];
}

function identity(m: ServedModel): Record<string, unknown> {
  return { name: m.name, sha256: m.sha256, createdAt: m.meta.createdAt, preset: m.meta.config.preset, imageSize: m.meta.config.model.imageSize, ntsnetVersion: m.meta.ntsnetVersion };
}

/**
 * Builds the service (not listening yet): registers OpenAPI generation, multipart uploads, the routes and the error
 * handling. The models are owned by the caller until the app closes; closing the app drains every micro-batcher and
 * releases the engines.
 */
export async function buildApp(o: AppOptions): Promise<ServeApp> {
  const { tf, models } = o;
  const inFlight = new Map<string, number>([...models.keys()].map((k) => [k, 0]));
  /** This thread's tensors plus those of every engine thread. */
  const liveTensors = async (): Promise<number> => {
    let n = tf.memory().numTensors;
    for (const m of models.values()) n += (await m.engine.tensors?.()) ?? 0;
    return n;
  };
  let draining = false;
  const metrics = createMetrics({
    queueDepth: () => new Map([...models].map(([k, m]) => [k, m.batcher.depth])),
    inFlight: () => new Map(inFlight),
    tensors: liveTensors,
  });
  for (const m of models.values())
    m.batcher.onBatch((n, ms) => {
      metrics.batchSize.observe({ model: m.name }, n);
      metrics.inference.observe({ model: m.name }, ms / 1000);
    });
  const decoder = new UploadDecoder(o.maxPixels);
  const mib = (o.bodyLimit / 2 ** 20).toFixed(1);

  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit,
    requestTimeout: Math.max(o.timeoutMs, 1000),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: true, removeAdditional: false } },
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'ntsnet inspection service', version: NTSNET_VERSION, description: 'Image anomaly detection (NTSNet teacher-student) over HTTP. See docs/deploy.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } } },
    },
    transformObject: (doc) => {
      const d = doc as { openapiObject?: { paths?: Record<string, Record<string, Record<string, unknown>>> } };
      const post = d.openapiObject?.paths?.['/v1/models/{name}/predict']?.post;
      if (post) {
        const binary = { schema: { type: 'string', format: 'binary' } };
        post.requestBody = {
          required: true,
          description: `The image: raw bytes (Content-Type ${IMAGE_MEDIA_TYPES.join(', ')}) or multipart/form-data with one file field; at most ${mib} MiB and ${o.maxPixels.toLocaleString('en-US')} pixels.`,
          content: { ...Object.fromEntries(IMAGE_MEDIA_TYPES.map((t) => [t, binary])), 'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } } } } },
        };
      }
      return (d.openapiObject ?? doc) as never;
    },
  });
  await app.register(multipart, { limits: { fileSize: o.bodyLimit, files: 1, fields: 8, parts: 9 }, throwFileSizeLimit: true });
  app.addContentTypeParser([...IMAGE_MEDIA_TYPES], { parseAs: 'buffer', bodyLimit: o.bodyLimit }, (_req, body, done) => done(null, body));

  const sendError = (reply: FastifyReply, status: number, code: string, message: string, headers: Record<string, string> = {}): FastifyReply => {
    metrics.errors.inc({ code });
    for (const [k, v] of Object.entries(headers)) void reply.header(k, v);
    return reply.code(status).type('application/json; charset=utf-8').send(errorBody(status, code, message));
  };
  const sendHttpError = (reply: FastifyReply, e: HttpError): FastifyReply => sendError(reply, e.statusCode, e.code, e.message, e.headers);

  app.setErrorHandler((err: FastifyError | HttpError | Error, req, reply) => {
    if (err instanceof HttpError) return sendHttpError(reply, err);
    // Nobody is listening any more; the code is nginx's 499 "client closed request", for the logs and metrics.
    if (err instanceof RequestAbortedError) return sendError(reply, 499, 'client_closed_request', err.message);
    if (err instanceof QueueTimeoutError) return sendError(reply, 504, 'timeout', `${err.message} (ntsnet serve --timeout-ms ${o.timeoutMs}). The service is overloaded: retry later, or add instances.`);
    const fe = err as FastifyError;
    if (fe.validation) return sendError(reply, 400, 'invalid_request', `${fe.message}. See /openapi.json for the accepted parameters.`);
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
      case 'FST_REQ_FILE_TOO_LARGE':
        return sendError(reply, 413, 'body_too_large', `The request body is larger than this service's limit of ${mib} MiB (ntsnet serve --body-limit-mb). Downscale or recompress the image.`);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 415, 'unsupported_media_type', `Content-Type '${req.headers['content-type'] ?? '(none)'}' is not accepted. Send the image bytes with Content-Type ${IMAGE_MEDIA_TYPES.join(', ')}, or multipart/form-data with one file field.`);
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendError(reply, 400, 'bad_content_length', 'Content-Length does not match the body. Send the complete image.');
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        // application/json reaches Fastify's JSON parser before the route sees it: still the wrong media type.
        return sendHttpError(reply, notAnImage(req));
      case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
        return sendHttpError(reply, badMultipart(fe.message));
      default:
    }
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return sendError(reply, fe.statusCode, (fe.code ?? 'bad_request').toLowerCase(), fe.message);
    // busboy's parse errors of a malformed multipart body are the client's, not the service's.
    if (req.isMultipart() && /multipart|boundary/i.test(err.message))
      return sendHttpError(reply, badMultipart(err.message));
    (o.log ?? ((l: string) => void process.stderr.write(`${l}\n`)))(`ntsnet serve: internal error on ${req.method} ${req.url}: ${err.stack ?? err.message}`);
    return sendError(reply, 500, 'internal_error', `Internal error: ${err.message}. This is a bug or a server-side problem; the service keeps running.`);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'not_found', `No route ${req.method} ${req.url.split('?')[0]}. Routes: GET /v1/models, POST /v1/models/{name}/predict, GET /healthz, /readyz, /metrics, /openapi.json, /.`));

  // Request timing and metrics for every route.
  const started = new WeakMap<FastifyRequest, number>();
  /** Per admitted predict request: abort signal (client gone) and the release of its admission slot. */
  const admitted = new WeakMap<FastifyRequest, { signal: AbortSignal; release: () => void; begin: () => void }>();
  app.addHook('onRequest', async (req) => void started.set(req, performance.now()));
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    const t0 = started.get(req);
    metrics.requests.inc({ route, method: req.method, status: String(reply.statusCode) });
    if (t0 !== undefined) metrics.latency.observe({ route }, (performance.now() - t0) / 1000);
  });
  // While draining, every response closes its connection, so keep-alive clients do not hold the shutdown open.
  app.addHook('onSend', async (_req, reply, payload) => {
    if (draining) void reply.header('connection', 'close');
    return payload;
  });
  // API key for /v1/*.
  if (o.apiKey) {
    const key = o.apiKey;
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/v1/')) return;
      const k = requestKey(req);
      if (!k || !sameSecret(k, key)) {
        void reply.header('www-authenticate', 'Bearer realm="ntsnet"');
        throw new HttpError(401, k ? 'invalid_api_key' : 'missing_api_key', k ? 'The API key is not valid. Send the key the service was started with (ntsnet serve --api-key / NTSNET_API_KEY).' : 'This service needs an API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`.');
      }
    });
  }

  app.get('/healthz', {
    schema: {
      summary: 'Liveness: the process runs', tags: ['operations'],
      response: { 200: { type: 'object', properties: { status: { type: 'string' }, uptimeSeconds: { type: 'number' }, models: { type: 'integer' }, tensors: { type: 'integer', description: 'tf.memory().numTensors of the service and its inference threads (constant between requests)' }, rssBytes: { type: 'integer' } } } },
    },
  }, async () => ({ status: 'ok', uptimeSeconds: process.uptime(), models: models.size, tensors: await liveTensors(), rssBytes: process.memoryUsage().rss }));

  app.get('/readyz', {
    schema: { summary: 'Readiness: models loaded, every inference thread alive, not shutting down (503 otherwise)', tags: ['operations'], response: { 200: { type: 'object', properties: { ready: { type: 'boolean' } } }, 503: errorSchema } },
  }, async (_req, reply) => {
    if (draining) return sendError(reply, 503, 'shutting_down', 'The service is shutting down; send requests to another instance.');
    const failed = [...models.values()].filter((m) => m.engine.failure);
    if (failed.length)
      return sendError(reply, 503, 'engine_failed', `The engine of ${failed.map((m) => `'${m.name}' (${m.engine.failure})`).join(', ')} has stopped; this instance cannot score those models. Restart the service.`);
    return { ready: true };
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['operations'], produces: ['text/plain'] } }, async (_req, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/', { schema: { hide: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'").send(PAGE_HTML));
  app.get('/ui.js', { schema: { hide: true } }, async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(PAGE_JS));

  app.get('/v1/models', {
    schema: { summary: 'The served models, their engine, thresholds and teacher', tags: ['inspection'], security: [{ bearer: [] }, { apiKey: [] }], response: { 200: modelsResponse, 401: errorSchema } },
  }, async () => ({
    models: [...models.values()].map((m) => ({
      name: m.name, engine: m.engine.name, imageSize: m.engine.imageSize,
      thresholds: { image: m.thresholds.image, pixel: m.thresholds.pixel, imageSource: m.thresholds.imageSource, pixelSource: m.thresholds.pixelSource },
      teacher: m.meta.teacher, checkpoint: identity(m), batching: { maxBatch: m.batcher.maxBatch, maxWaitMs: m.batcher.maxWaitMs }, queueDepth: m.batcher.depth,
    })),
  }));

  app.post<PredictRoute>('/v1/models/:name/predict', {
    schema: {
      summary: 'Score one image', tags: ['inspection'], security: [{ bearer: [] }, { apiKey: [] }],
      params: { type: 'object', properties: { name: { type: 'string', description: 'model name (GET /v1/models)' } }, required: ['name'] },
      querystring: { type: 'object', properties: { map: { type: 'string', enum: ['none', 'png16', 'overlay'], default: 'none', description: 'also return the anomaly map as a PNG (base64)' } }, additionalProperties: false },
      response: { 200: predictResponse, ...errors(400, 401, 404, 413, 415, 503, 504) },
    },
    // Admission before the body is read: unknown model, shutting down, queue full.
    onRequest: async (req, reply) => {
      const m = models.get(req.params.name);
      if (!m) throw new HttpError(404, 'unknown_model', `No model named '${req.params.name}'. Served models: ${[...models.keys()].join(', ')} (GET /v1/models).`);
      if (draining) throw new HttpError(503, 'shutting_down', 'The service is shutting down; send the request to another instance.', { 'retry-after': '1' });
      const n = inFlight.get(m.name) ?? 0;
      if (n >= o.maxQueue)
        throw new HttpError(503, 'queue_full', `Model '${m.name}' has ${n} requests waiting (limit ${o.maxQueue}, ntsnet serve --max-queue). Retry after the Retry-After delay, or add instances.`, { 'retry-after': '1' });
      inFlight.set(m.name, n + 1);
      // Admitted work is counted until it is over, not until the client goes: a request whose client disconnected
      // still holds its decoded image, and may be in a forward pass.
      const ctl = new AbortController();
      let released = false, handling = false;
      const release = (): void => {
        if (released) return;
        released = true;
        inFlight.set(m.name, (inFlight.get(m.name) ?? 1) - 1);
      };
      // An upload still arriving after --timeout-ms gives its slot back and is answered 408: without this, a few slow
      // or stalled clients would hold every slot of a model until Node's own request timeout, checked every 30 s.
      const uploadTimer = setTimeout(() => {
        if (handling || reply.raw.writableEnded) return;
        release();
        ctl.abort();
        // Written on the raw response: Fastify's reply belongs to the body parser, which is still waiting.
        metrics.errors.inc({ code: 'upload_timeout' });
        const body = JSON.stringify(errorBody(408, 'upload_timeout', `The image upload did not complete within ${o.timeoutMs} ms (ntsnet serve --timeout-ms). Send the whole body at once, or check the client's network.`));
        if (!reply.raw.headersSent) reply.raw.writeHead(408, { 'content-type': 'application/json; charset=utf-8', connection: 'close', 'content-length': Buffer.byteLength(body) });
        reply.raw.end(body, () => req.raw.destroy());
      }, o.timeoutMs);
      admitted.set(req, { signal: ctl.signal, release, begin: () => { handling = true; clearTimeout(uploadTimer); } });
      reply.raw.once('close', () => {
        clearTimeout(uploadTimer);
        if (!reply.raw.writableFinished) ctl.abort();
        if (!handling) release();
      });
    },
  }, async (req) => {
    const adm = admitted.get(req)!;
    adm.begin();
    try {
      return await predict(req, adm.signal);
    } finally {
      adm.release();
    }
  });

  const predict = async (req: FastifyRequest<PredictRoute>, signal: AbortSignal): Promise<Record<string, unknown>> => {
    const m = models.get(req.params.name)!;
    const t0 = started.get(req) ?? performance.now();
    let bytes: Buffer;
    if (req.isMultipart()) {
      const part = await req.file();
      if (!part) throw new HttpError(400, 'no_file', 'The multipart request has no file field. Send the image as a file field (e.g. curl -F file=@image.png).');
      bytes = await part.toBuffer();
    } else if (Buffer.isBuffer(req.body)) {
      bytes = req.body;
    } else if (req.body === undefined || req.body === null) {
      throw new HttpError(400, 'empty_body', 'The request has no image: send the image bytes as the body with Content-Type image/png, image/jpeg, ... (e.g. curl --data-binary @image.png -H "Content-Type: image/png").');
    } else {
      throw notAnImage(req);
    }
    if (signal.aborted) throw new RequestAbortedError('the client disconnected before the image was decoded');
    const want = req.query.map ?? 'none';
    const size = m.engine.imageSize;
    const dec = await decoder.decode(bytes, size, want === 'overlay');
    const tDecoded = performance.now();
    const left = o.timeoutMs - (tDecoded - t0);
    if (left <= 0) throw new QueueTimeoutError(`the request took more than ${o.timeoutMs} ms before reaching the model`);
    const r = await m.batcher.submit(dec.input, left, signal);
    const th = m.thresholds;
    const decision = r.score > th.image ? 'anomalous' : 'normal';
    metrics.predictions.inc({ model: m.name, decision });
    let map: Record<string, unknown> | undefined;
    if (want === 'png16') map = { format: 'png16', contentType: 'image/png', width: size, height: size, fullScale: th.fullScale, base64: (await mapPng16(r.map, size, th)).toString('base64') };
    else if (want === 'overlay') map = { format: 'overlay', contentType: 'image/png', width: dec.width, height: dec.height, fullScale: th.fullScale, base64: (await overlayPng(dec.rgb!, r.map, size, th)).toString('base64') };
    const total = performance.now() - t0;
    return {
      model: identity(m), teacher: m.meta.teacher, engine: m.engine.name,
      score: r.score, normalizedScore: r.score / th.image, decision, threshold: th.image, pixelThreshold: th.pixel, thresholdSource: th.imageSource,
      image: { width: dec.width, height: dec.height }, batchSize: r.batchSize,
      latencyMs: { total, decode: tDecoded - t0, queue: r.queueMs, inference: r.inferenceMs },
      ...(map ? { map } : {}),
    };
  };

  app.addHook('onClose', async () => {
    for (const m of models.values()) await m.batcher.drain();
    for (const m of models.values()) await m.engine.dispose();
    decoder.close();
  });

  return { app, metrics, startDraining: () => void (draining = true) };
}
