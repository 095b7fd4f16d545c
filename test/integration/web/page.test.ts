// The local web page in a real browser (Debian's headless Chromium driven by playwright-core), served by
// the running device on the loopback address: a camera playing an ffmpeg video of someone who is not
// enrolled, the models in ONNX Runtime, events over a real mosquitto. The screenshots in docs/figures/ are
// made with FACEGATE_SCREENSHOTS=docs/figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../../helpers/mosquitto.ts';
import { FACES_DIR } from '../../helpers/paths.ts';
import { videoOfPhoto } from '../../helpers/video.ts';
import { hamiltonCamera, type RunningApp, startApp } from '../app/harness.ts';

const STRANGER = join(FACES_DIR, 'face_recognition_examples', 'knn_examples', 'train', 'obama', 'obama.jpg');
/** Debian's chromium package; CHROMIUM points elsewhere. */
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PASSWORD = 'correct horse battery';
/** Screenshots go to the test's temporary directory, or where FACEGATE_SCREENSHOTS says (docs/figures). */
const shot = (name: string) => join(process.env.FACEGATE_SCREENSHOTS ?? dir, name);

let dir: string;
let broker: Mosquitto;
let device: RunningApp;
let browser: Browser;
let page: Page;
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'facegate-web-'));
  broker = await startMosquitto();
  const video = await videoOfPhoto(STRANGER, join(dir, 'stranger.mp4'), { seconds: 4 });
  const camera = {
    ...hamiltonCamera(true),
    source: { kind: 'video', path: video, loop: true, realtime: true },
  };
  device = await startApp(dir, broker.url, {
    cameras: [camera],
    web: { enabled: true, port: 0, password: PASSWORD },
  });
  url = device.app.webUrl as string;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await device?.app.stop().catch(() => {});
  await broker?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('the local web page (headless Chromium)', () => {
  it('listens on the loopback address and refuses a wrong password', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const unauthenticated = await fetch(`${url}/api/state`);
    expect(unauthenticated.status).toBe(401);
    await page.goto(url);
    await page.locator('#login').waitFor({ state: 'visible' });
    await page.fill('#password', 'not the password');
    await page.click('#login-form button');
    await expect.poll(() => page.textContent('#login-error')).toBe('wrong password');
    expect(await page.isHidden('#main')).toBe(true);
    await page.screenshot({ path: shot('web-login.png') });
  });

  it('shows the live camera with a box around the face', async () => {
    await page.fill('#password', PASSWORD);
    await page.click('#login-form button');
    await page.locator('#main').waitFor({ state: 'visible' });
    const box = page.locator('.camera .face-box').first();
    await box.waitFor({ state: 'visible', timeout: 60_000 });
    // Measured in one go: the boxes are redrawn every second.
    const geometry = () =>
      page.evaluate(() => {
        const frame = document.querySelector('.camera img.frame')?.getBoundingClientRect();
        const face = document.querySelector('.camera .face-box')?.getBoundingClientRect();
        return frame && face && frame.width > 0
          ? { frame: [frame.x, frame.width], face: [face.x, face.width] }
          : null;
      });
    await expect.poll(geometry, { timeout: 30_000 }).not.toBeNull();
    const { frame, face } = (await geometry()) as { frame: number[]; face: number[] };
    // The box lies on the frame and is a face's size, not the whole frame.
    expect(face[0]).toBeGreaterThanOrEqual(frame[0]);
    expect(face[0] + face[1]).toBeLessThanOrEqual(frame[0] + frame[1] + 1);
    expect(face[1]).toBeGreaterThan(10);
    expect(face[1]).toBeLessThan(frame[1] / 2);
    await page.screenshot({ path: shot('web-live.png') });
  });

  it('enrols a person from an unknown visitor by clicking, and the event list follows', async () => {
    const card = page.locator('#unknowns li').first();
    await card.waitFor({ state: 'visible', timeout: 90_000 });
    const id = await card.locator('strong').textContent();
    expect(id).toMatch(/^unknown-\d+$/);
    expect(await page.locator('#events li .type-unknown').count()).toBeGreaterThan(0);
    await card.locator('input').fill('visitor');
    await card.locator('button', { hasText: 'Enrol' }).click();
    await page.locator('#people li strong', { hasText: 'visitor' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#unknowns li').count()).toBe(0);
    // The camera still sees them: the next decision names them, and the list shows it.
    await page
      .locator('#events li', { has: page.locator('.type-recognized'), hasText: 'visitor' })
      .first()
      .waitFor({ timeout: 90_000 });
    await page.locator('.camera .face-box.known').first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: shot('web-people.png'), fullPage: true });
  });
});
