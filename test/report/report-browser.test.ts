// report: one self-contained HTML page, checked in a real headless Chromium (Debian's `chromium`,
// driven by playwright-core): it loads with no console error and no network request, the finding
// and every event of its causal chain are visible on the timeline, the state and the reproducing
// commands are there, and a screenshot is not blank (pixel variance). `.ci/run` installs chromium;
// outside CI, a machine without it skips these tests with a message saying so.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliJson, tempDir } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let ctx: BrowserContext | null = null;
let profile = '';
let why = '';
let dir: string;
let html: string;
let finding: { class: string; seq: number; chain: number[] };

beforeAll(async () => {
  dir = tempDir();
  const db = join(dir, 'r.db');
  const rec = cliJson(['record', '--workload', 'remap', '--path', 'iommu', '--seed', '7', '--ops', '8', '--ring', '16', '--fault', 'delay-invalidate=1', '--db', db]);
  finding = rec.findings[0];
  html = join(dir, 'race.html');
  const r = cli(['report', String(rec.trace), '--db', db, '-o', html]);
  expect(r.code, r.stderr).toBe(0);
  if (!existsSync(CHROMIUM)) why = `${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`;
  else {
    profile = mkdtempSync(join(tmpdir(), 'dmareplay-chromium-'));
    try {
      ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS /* playwright passes the fresh profile as --user-data-dir */, viewport: { width: 1280, height: 1000 } });
    } catch (e) {
      why = `chromium did not start: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  if (why && process.env.CI) throw new Error(`the report test needs a browser in CI: ${why}`);
  if (why) console.warn(`SKIPPED the report's browser test: ${why}`);
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

describe('report: the HTML file', () => {
  it('is self-contained: no external reference of any kind', () => {
    const text = readFileSync(html, 'utf8');
    expect(text).toMatch(/^<!doctype html>/);
    expect(text).not.toMatch(/<link\b|\bsrc=|@import|url\((?!#)/i);
    expect(text.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '').replace(/https:\/\/ui\.perfetto\.dev/g, '')).not.toMatch(/https?:\/\//);
    expect(text).toContain('npx dmareplay record --workload remap --path iommu --seed 7 --ops 8 --ring 16 --fault delay-invalidate=1');
  });
});

describe('report: in headless Chromium', () => {
  it('loads without console errors or network requests; the finding and its chain are visible', async (t) => {
    if (!ctx) return t.skip(why);
    const page = await ctx.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    page.on('pageerror', (e) => void errors.push(e.message));
    page.on('request', (r) => void (r.url() !== pathToFileURL(html).href && requests.push(r.url())));
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
    expect(await page.evaluate(() => document.documentElement.dataset.ready)).toBe('yes'); // the inline script ran
    const card = page.locator(`#finding-${finding.seq}`);
    await expect.poll(() => card.isVisible()).toBe(true);
    expect(await card.locator('.cls').innerText()).toBe(finding.class);
    // every event of the causal chain is a visible point on the timeline, in seq order left to right
    const xs: number[] = [];
    for (const seq of finding.chain) {
      const step = card.locator(`svg.timeline g.step[data-seq="${seq}"]`);
      expect(await step.isVisible(), `chain event #${seq}`).toBe(true);
      const box = (await step.boundingBox())!;
      expect(box.width).toBeGreaterThan(0);
      xs.push(box.x);
    }
    expect(xs).toEqual([...xs].sort((a, b) => a - b));
    expect(await card.locator('table.chain tbody tr').count()).toBeGreaterThanOrEqual(finding.chain.length);
    // hovering a point highlights its row
    await card.locator(`svg.timeline g.step[data-seq="${finding.chain[0]}"]`).hover();
    expect(await card.locator(`tr.hl[data-seq="${finding.chain[0]}"]`).count()).toBe(1);
    // the state at the finding: the device IOTLB and the invalidation QEMU still owes
    const state = page.locator('#state');
    expect(await state.isVisible()).toBe(true);
    expect(await state.innerText()).toMatch(/device IOTLB/);
    expect(await state.innerText()).toMatch(/INCOHERENT/);
    expect(await page.locator('table.owed').isVisible()).toBe(true);
    // the two translations of the finding's IOVA are marked: the guest's IOMMU page and vhost's stale entry
    expect(await page.locator('table.iommu tr.focus').count()).toBe(1);
    expect(await page.locator('table.iotlb tr.focus').count()).toBe(1);
    expect(await page.locator('table.iotlb tr.focus').innerText()).toContain(`#${finding.chain[0]}`); // filled by the chain's UPDATE
    expect(await page.locator('#reproduce pre.cmd').first().innerText()).toMatch(/^\$ npx dmareplay record /);
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  }, 60_000);

  it('a screenshot is not blank', async (t) => {
    if (!ctx) return t.skip(why);
    const page = await ctx.newPage();
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
    const png = await page.screenshot();
    // decode the PNG in the browser itself (no image library needed) and measure it
    const blank = await ctx.newPage();
    const stats = await blank.evaluate(async (b64) => {
      const img = new Image();
      img.src = 'data:image/png;base64,' + b64;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const g = c.getContext('2d')!;
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let n = 0, s = 0, s2 = 0;
      const colors = new Set<number>();
      for (let i = 0; i < d.length; i += 4) {
        const l = 0.299 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]!;
        s += l;
        s2 += l * l;
        n++;
        colors.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
      }
      const mean = s / n;
      return { width: c.width, height: c.height, variance: s2 / n - mean * mean, colors: colors.size };
    }, png.toString('base64'));
    expect(stats.width).toBe(1280);
    expect(stats.variance).toBeGreaterThan(100); // a blank page has variance 0
    expect(stats.colors).toBeGreaterThan(20); // text, lanes, coloured points
    await page.close();
    await blank.close();
  }, 60_000);
});
