/**
 * `ntsnet report`: tiny fit --test, then the report, opened in a real headless Chromium (playwright-core with the
 * system /usr/bin/chromium; the browser part is skipped with a message when it is absent).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeMvtecCategory, makeTempDir, repoRoot, writeSquareMask, writeStripedImage, chromiumMissing, launchChromium } from './helpers.js';

const run = promisify(execFile);
const cli = (): string => path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js');
const W = 72, H = 64;

/** Image size and defect half-width of this suite's synthetic images. */
const SIZE = { width: W, height: H, half: 7 };

/** MVTec-layout category: 8 train, 4 good + 4 defective test images with masks. */
const makeCategory = (root: string): Promise<string> =>
  makeMvtecCategory(root, { ...SIZE, train: 8, good: 4, defective: 4, defectAt: (i) => ({ x: 12 + 15 * i, y: 20 + 8 * (i % 3) }) });

interface Results { results: { category: string; imageAuroc: number | null; pixelAuroc: number | null; images: { file: string; label: 0 | 1; score: number }[] }[] }

let tmp = '', data = '', runDir = '', reportFile = '';
let results: Results;
let calibrated = 0;

before(async () => {
  tmp = makeTempDir('report');
  data = path.join(tmp, 'widget');
  await makeCategory(data);
  runDir = path.join(tmp, 'run');
  await run(process.execPath, [cli(), 'fit', '--data', data, '--out', runDir, '--preset', 'tiny', '--test'], { maxBuffer: 1 << 24 });
  results = JSON.parse(readFileSync(path.join(runDir, 'results.json'), 'utf8')) as Results;
  calibrated = (JSON.parse(readFileSync(path.join(runDir, 'config.json'), 'utf8')) as { thresholds: { image: number } }).thresholds.image;
  const rep = await run(process.execPath, [cli(), 'report', runDir, '--data', data], { maxBuffer: 1 << 24 });
  assert.match(rep.stderr, /wrote .*report\.html/);
  reportFile = path.join(runDir, 'report.html');
});

/** Expected counts at threshold t (anomalous when score > t). */
function expected(t: number): { tp: number; fp: number; tn: number; fn: number } {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (const im of results.results[0]!.images) {
    const a = im.score > t;
    if (im.label === 1) { if (a) c.tp++; else c.fn++; } else if (a) c.fp++; else c.tn++;
  }
  return c;
}

test('report: one self-contained HTML file (inline Chart.js, data: images, no external references), written atomically', { timeout: 60_000 }, () => {
  assert.ok(existsSync(reportFile));
  const html = readFileSync(reportFile, 'utf8');
  const bytes = statSync(reportFile).size;
  assert.ok(bytes < 1_500_000, `report is small (${bytes} bytes)`);
  assert.match(html, /Chart\.js v4\.\d+\.\d+/, 'Chart.js UMD build inlined');
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  assert.doesNotMatch(html, /<(?:script|img|link)[^>]+(?:src|href)="(?!data:)/i, 'no script/img/link loads anything but data: URIs');
  assert.doesNotMatch(html, /sourceMappingURL/);
  const imgs = html.match(/<img src="data:image\/(?:png|jpeg);base64,/g) ?? [];
  // 8 test images x (image, heat map, predicted mask) + 4 ground-truth masks.
  assert.equal(imgs.length, 8 * 3 + 4);
  assert.equal((html.match(/<figure class="card /g) ?? []).length, 8);
  assert.ok(!readdirSync(runDir).some((f) => f.startsWith('.tmp-')), 'no temporary files left');
  assert.deepEqual(readdirSync(data).sort(), ['ground_truth', 'test', 'train'], 'nothing written into the dataset');
});

test('report: refuses an output inside the dataset; without a dataset it still writes metrics and charts', { timeout: 60_000 }, async () => {
  await assert.rejects(run(process.execPath, [cli(), 'report', runDir, '--data', data, '--out', path.join(data, 'test', 'report.html')]), (e: { stderr: string }) => {
    assert.match(e.stderr, /inside the dataset folder/);
    return true;
  });
  assert.deepEqual(readdirSync(path.join(data, 'test')).sort(), ['good', 'spot']);
  const out = path.join(tmp, 'nodata', 'r.html');
  const r = await run(process.execPath, [cli(), 'report', runDir, '--out', out], { maxBuffer: 1 << 24 });
  assert.match(r.stderr, /no dataset given/);
  const html = readFileSync(out, 'utf8');
  assert.match(html, /id="gallery-missing"/);
  assert.match(html, /<td>widget<\/td>/);
});

test('report: several categories (ntsnet test --data A B) and a folder dataset (--normal/--abnormal)', { timeout: 90_000 }, async () => {
  // The widget checkpoint tested on widget and on a copy named gadget: one row per category plus the mean.
  const gadget = path.join(tmp, 'gadget');
  cpSync(data, gadget, { recursive: true });
  const multi = path.join(tmp, 'multi');
  await run(process.execPath, [cli(), 'test', '--checkpoint', runDir, '--data', data, gadget, '--out', multi], { maxBuffer: 1 << 24 });
  await run(process.execPath, [cli(), 'report', multi, '--checkpoint', runDir, '--data', data, gadget, '--thumb-size', '64'], { maxBuffer: 1 << 24 });
  let html = readFileSync(path.join(multi, 'report.html'), 'utf8');
  const metricRows = html.slice(html.indexOf('<table id="metrics">'), html.indexOf('</table>')).match(/<tr[ >]/g) ?? [];
  assert.equal(metricRows.length, 1 + 3, 'header, widget, gadget, mean');
  assert.match(html, /<td>gadget<\/td>/);
  assert.match(html, /<td>all \(mean AUROC\)<\/td>/);
  for (const id of ['n-tp-0', 'n-tp-1', 'n-tp']) assert.match(html, new RegExp(`id="${id}"`));
  assert.equal((html.match(/<figure class="card /g) ?? []).length, 16);
  assert.match(html, /<img src="data:image\/jpeg;base64,[^"]+" width="64" height="57"/, 'thumbnails keep the aspect ratio (72 x 64 -> 64 x 57)');

  // Folder dataset: normal images split by the checkpoint's saved split, masks beside the defective images.
  const good = path.join(tmp, 'folder', 'good'), scratch = path.join(tmp, 'folder', 'scratch');
  mkdirSync(good, { recursive: true });
  mkdirSync(scratch, { recursive: true });
  for (let i = 0; i < 14; i++) await writeStripedImage(path.join(good, `g${i}.png`), 100 + i, SIZE);
  for (let i = 0; i < 3; i++) {
    const d = { x: 20 + 15 * i, y: 30 };
    await writeStripedImage(path.join(scratch, `s${i}.png`), 130 + i, { ...SIZE, defect: d });
    await writeSquareMask(path.join(scratch, `s${i}_mask.png`), d, SIZE);
  }
  const frun = path.join(tmp, 'frun');
  await run(process.execPath, [cli(), 'fit', '--normal', good, '--abnormal', scratch, '--out', frun, '--preset', 'tiny', '--test'], { maxBuffer: 1 << 24 });
  const fres = JSON.parse(readFileSync(path.join(frun, 'results.json'), 'utf8')) as Results;
  const fout = path.join(tmp, 'folder-report.html');
  await run(process.execPath, [cli(), 'report', frun, '--normal', good, '--abnormal', scratch, '--out', fout], { maxBuffer: 1 << 24 });
  html = readFileSync(fout, 'utf8');
  const n = fres.results[0]!.images.length;
  assert.equal(n, 3 + 3, 'saved split: 20 % of 14 normal images + 3 defective');
  assert.equal((html.match(/<figure class="card /g) ?? []).length, n);
  assert.equal((html.match(/alt="ground-truth mask"/g) ?? []).length, 3);
  assert.deepEqual(readdirSync(scratch).length, 6, 'nothing written into the dataset');
});

test('report: opens in headless Chromium from file:// with no errors and no network; the slider updates the counts', { timeout: 90_000 }, async (t) => {
  const missing = chromiumMissing();
  if (missing) {
    t.skip(missing);
    return;
  }
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [], requests: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(reportFile).href, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10_000 });

    // Metrics table: category, image and pixel AUROC as in metrics.md.
    const r0 = results.results[0]!;
    const metrics = (await page.textContent('#metrics'))!;
    assert.match(metrics, /Image AUROC/);
    const row = (await page.textContent('#metrics tbody tr'))!;
    assert.ok(row.includes('widget'), row);
    for (const v of [r0.imageAuroc, r0.pixelAuroc]) assert.ok(row.includes(v === null ? 'n/a' : (100 * v).toFixed(1)), `${row} shows ${v}`);

    // Both charts were created by the inlined Chart.js.
    assert.equal(await page.evaluate(() => Object.keys((window as unknown as { Chart: { instances: object } }).Chart.instances).length), 2);

    const counts = async (): Promise<{ tp: number; fp: number; tn: number; fn: number }> => ({
      tp: Number(await page.textContent('#n-tp')), fp: Number(await page.textContent('#n-fp')),
      tn: Number(await page.textContent('#n-tn')), fn: Number(await page.textContent('#n-fn')),
    });
    const slide = async (v: number): Promise<void> => {
      await page.evaluate((value) => {
        const el = document.getElementById('threshold') as HTMLInputElement;
        el.value = String(value);
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }, v);
    };
    const outcomes = async (): Promise<Record<string, number>> => page.evaluate(() => {
      const n: Record<string, number> = { tp: 0, fp: 0, tn: 0, fn: 0 };
      for (const c of Array.from(document.querySelectorAll<HTMLElement>('.card'))) n[c.dataset.outcome!]!++;
      return n;
    });

    // Initially at the calibrated threshold (the range input keeps about 15 significant digits).
    const initial = Number(await page.inputValue('#threshold'));
    assert.ok(Math.abs(initial - calibrated) <= 1e-12 * Math.abs(calibrated), `slider starts at ${calibrated} (shows ${initial})`);
    assert.deepEqual(await counts(), expected(calibrated));

    // Thresholds between distinct scores (no ties), plus below and above all of them (inside the slider range).
    const scores = [...new Set(r0.images.map((i) => i.score))].sort((a, b) => a - b);
    const min = Number(await page.getAttribute('#threshold', 'min')), max = Number(await page.getAttribute('#threshold', 'max'));
    const tries = [(min + scores[0]!) / 2, (scores[Math.floor(scores.length / 2) - 1]! + scores[Math.floor(scores.length / 2)]!) / 2, (scores[scores.length - 1]! + max) / 2];
    const seen: string[] = [];
    for (const v0 of tries) {
      await slide(v0);
      const v = Number(await page.inputValue('#threshold')); // the value the page reads (may be rounded by the browser)
      assert.ok(Math.abs(v - v0) <= 1e-9 * Math.abs(v0), `slider value ${v} ~ ${v0}`);
      const want = expected(v);
      const got = await counts();
      assert.deepEqual(got, want, `counts at threshold ${v}`);
      assert.deepEqual(await outcomes(), want, `gallery borders at threshold ${v}`);
      const good = want.fp + want.tn, bad = want.tp + want.fn;
      assert.equal(await page.textContent('#rate-fr'), `${((100 * want.fp) / good).toFixed(1)} %`);
      assert.equal(await page.textContent('#rate-miss'), `${((100 * want.fn) / bad).toFixed(1)} %`);
      seen.push(JSON.stringify(got));
    }
    assert.deepEqual(JSON.parse(seen[0]!), { tp: 4, fp: 4, tn: 0, fn: 0 }, 'below every score all images are rejected');
    assert.deepEqual(JSON.parse(seen[2]!), { tp: 0, fp: 0, tn: 4, fn: 4 }, 'above every score all images pass');

    // Filter "errors" shows exactly FP + FN cards.
    await slide(tries[1]!);
    await page.click('button[data-filter="errors"]');
    const want = expected(tries[1]!);
    assert.equal(await page.locator('.card:visible').count(), want.fp + want.fn);
    await page.click('button[data-filter="all"]');
    await page.click('#threshold-reset');
    assert.deepEqual(await counts(), expected(calibrated));

    if (await page.isEnabled('#hist-log')) {
      await page.check('#hist-log'); // log score axis: rebins, must not throw
      await page.uncheck('#hist-log');
    }
    assert.deepEqual(errors, [], 'no page errors');
    const foreign = requests.filter((u) => !/^(file|data):/.test(u));
    assert.deepEqual(foreign, [], 'no network requests');
    assert.ok(requests.some((u) => u.startsWith('file:')), 'the report itself was loaded from file://');

    const shot = path.join(makeTempDir('report-shot'), 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000);
    const dir = process.env.NTSNET_SCREENSHOT_DIR;
    if (dir) {
      mkdirSync(dir, { recursive: true });
      copyFileSync(shot, path.join(dir, 'report.png'));
    }
    t.diagnostic(`screenshot: ${dir ? path.join(dir, 'report.png') : shot}`);
  } finally {
    await browser.close();
  }
});
