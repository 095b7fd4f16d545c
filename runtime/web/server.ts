// The device's local web page (web.enabled): live view of each camera with its faces boxed and named,
// the recent events with their crops, the people with their photos (add, remove, rename), the unknown
// visitors to name or dismiss, and the device's health. Plain HTML/CSS/JS from ./static, no third-party
// asset, so it works with no network beyond the device. Served by Hono on Node's http server.
//
// Access: 127.0.0.1 by default. With web.password or web.token set, every page and API call needs a
// session cookie from POST /login (the password or the token) or `Authorization: Bearer <token>`; the
// configuration refuses a non-loopback web.host without one of them. Changes are JSON POST/DELETE
// requests (a cross-site form cannot send JSON without a CORS preflight, which is never granted) and the
// session cookie is SameSite=Strict and HttpOnly.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import sharp from 'sharp';
import type { Config } from '../config/index.ts';
import type { HealthReport } from '../control/api.ts';
import type { GalleryPort } from '../control/handlers/index.ts';
import { CROP_SIZE, GalleryError } from '../matching/gallery/records.ts';
import type { FrameView } from '../pipeline/camera-pipeline.ts';
import { EnrollError } from '../pipeline/enroll.ts';
import type { RecentFace } from '../pipeline/recent-faces.ts';
import { ImageDecodeError } from '../vision/image.ts';

export type WebConfig = Config['web'];

/** What the page shows and changes, over the running device. */
export interface WebPort {
  cameras(): { id: string; fps: number; view: FrameView | null }[];
  /** JPEG of the camera's latest frame, or null before the first one. */
  frame(camera: string): Promise<Buffer | null>;
  /** Newest first. */
  events(): RecentFace[];
  gallery: GalleryPort;
  /** One stored crop of a person, or null. */
  photo(name: string): Buffer | null;
  rename(from: string, to: string): boolean;
  /** An unknown visitor's best crop, or null. */
  unknownCrop(id: string): Buffer | null;
  health(): Promise<HealthReport>;
}

const STATIC = new URL('./static/', import.meta.url);
const FILES: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/style.css': 'style.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};
const SESSION_COOKIE = 'facegate_session';
/** Most sessions kept; the oldest is forgotten first. */
const MAX_SESSIONS = 64;
const MAX_PHOTO_BASE64 = Math.ceil((4 * 1024 * 1024) / 3) * 4;

function sameSecret(given: unknown, expected: string | undefined): boolean {
  if (typeof given !== 'string' || expected === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cropJpeg(rgb: Uint8Array): Promise<Buffer> {
  return sharp(rgb, { raw: { width: CROP_SIZE, height: CROP_SIZE, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

function jpeg(c: Context, bytes: Buffer | null): Response {
  if (!bytes) return c.json({ error: 'no image' }, 404);
  return c.body(new Uint8Array(bytes), 200, { 'content-type': 'image/jpeg', 'cache-control': 'no-store' });
}

async function jsonBody(c: Context): Promise<Record<string, unknown>> {
  if (!(c.req.header('content-type') ?? '').startsWith('application/json'))
    throw new WebError('send JSON (content-type: application/json)');
  const body = await c.req.json().catch(() => {
    throw new WebError('the request body is not valid JSON');
  });
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new WebError('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

function text(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value.length === 0)
    throw new WebError(`${field} must be a non-empty string`);
  return value;
}

class WebError extends Error {}

export function webApp(config: WebConfig, port: WebPort): Hono {
  const sessions = new Set<string>();
  const locked = config.password !== undefined || config.token !== undefined;
  const files = Object.fromEntries(
    Object.entries(FILES).map(([path, file]) => [path, readFileSync(new URL(file, STATIC), 'utf8')]),
  );
  const app = new Hono();

  app.onError((e, c) => {
    // A refused change is the user's to fix; anything else is reported without its stack.
    const mine = [WebError, GalleryError, EnrollError, ImageDecodeError].some((type) => e instanceof type);
    return c.json({ error: (e as Error).message }, mine ? 400 : 500);
  });

  app.post('/login', async (c) => {
    const { password } = await jsonBody(c);
    if (!locked) return c.json({ ok: true });
    if (!sameSecret(password, config.password) && !sameSecret(password, config.token))
      return c.json({ error: 'wrong password' }, 401);
    const session = randomBytes(32).toString('base64url');
    sessions.add(session);
    if (sessions.size > MAX_SESSIONS) sessions.delete(sessions.values().next().value as string);
    setCookie(c, SESSION_COOKIE, session, { httpOnly: true, sameSite: 'Strict', path: '/' });
    return c.json({ ok: true });
  });

  app.get('/login.state', (c) => c.json({ locked }));

  for (const [path, file] of Object.entries(FILES)) {
    // The page itself holds no data: it asks for the password when the API answers 401.
    app.get(path, (c) =>
      c.body(files[path], 200, {
        'content-type': TYPES[file.split('.').pop() as string],
        'cache-control': 'no-store',
        'content-security-policy':
          "default-src 'self'; img-src 'self' blob:; style-src 'self'; script-src 'self'; connect-src 'self'",
      }),
    );
  }

  app.use('/api/*', async (c, next) => {
    if (locked) {
      const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
      const cookie = getCookie(c, SESSION_COOKIE);
      if (!sameSecret(bearer, config.token) && !(cookie !== undefined && sessions.has(cookie)))
        return c.json({ error: 'log in first' }, 401);
    }
    await next();
  });

  app.get('/api/state', async (c) => {
    const events = port.events().map(({ event }) => ({
      id: event.id,
      time: event.time,
      camera: event.camera,
      type: event.type,
      identity: event.identity,
      unknownId: event.unknownId ?? null,
      score: event.score,
    }));
    return c.json({
      cameras: port.cameras(),
      events,
      people: await port.gallery.list(),
      unknowns: await port.gallery.unknowns(),
      health: await port.health(),
    });
  });

  app.get('/api/cameras/:id/frame.jpg', async (c) => jpeg(c, await port.frame(c.req.param('id'))));

  app.get('/api/events/:id/crop.jpg', async (c) => {
    const face = port.events().find((f) => f.event.id === c.req.param('id'));
    return jpeg(c, face ? await cropJpeg(face.best.crop) : null);
  });

  app.get('/api/people/:name/photo.jpg', async (c) => {
    const crop = port.photo(c.req.param('name'));
    return jpeg(c, crop ? await cropJpeg(crop) : null);
  });

  app.get('/api/unknowns/:id/crop.jpg', async (c) => {
    const crop = port.unknownCrop(c.req.param('id'));
    return jpeg(c, crop ? await cropJpeg(crop) : null);
  });

  app.post('/api/people', async (c) => {
    const body = await jsonBody(c);
    const photo = text(body, 'photo');
    if (photo.length > MAX_PHOTO_BASE64) throw new WebError('the photo is larger than 4 MiB');
    const bytes = Buffer.from(photo, 'base64');
    return c.json(await port.gallery.enroll(text(body, 'name'), [bytes]));
  });

  app.post('/api/people/:name/rename', async (c) => {
    const to = text(await jsonBody(c), 'name');
    if (!port.rename(c.req.param('name'), to)) throw new WebError(`nobody called ${c.req.param('name')}`);
    return c.json({ name: to });
  });

  app.delete('/api/people/:name', async (c) =>
    c.json({ removed: await port.gallery.remove(c.req.param('name')) }),
  );

  app.post('/api/unknowns/:id/enroll', async (c) => {
    const name = text(await jsonBody(c), 'name');
    return c.json(await port.gallery.enrollFromUnknown(name, c.req.param('id')));
  });

  app.post('/api/unknowns/:id/dismiss', async (c) =>
    c.json({ removed: await port.gallery.dismiss(c.req.param('id')) }),
  );

  return app;
}

export interface WebServer {
  /** `http://host:port`, with the port the system chose when web.port is 0. */
  url: string;
  close(): Promise<void>;
}

export async function startWebServer(config: WebConfig, port: WebPort): Promise<WebServer> {
  const app = webApp(config, port);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () =>
      resolve(s as Server),
    );
    (s as Server).once('error', reject);
  });
  const { port: bound } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `http://${host}:${bound}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
