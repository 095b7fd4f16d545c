import { describe, expect, it } from 'vitest';
import {
  type Config,
  loadConfig,
  mergeConfig,
  REDACTED,
  redactSecrets,
  validateConfig,
} from '../../../runtime/config/index.ts';

const config = mergeConfig(loadConfig({ env: {} }), {
  mqtt: {
    url: 'mqtts://dev:s3cret@broker:8883',
    username: 'dev',
    password: 'hunter2',
    tls: { cert: '/etc/facegate/client.pem', key: '/etc/facegate/client.key' },
  },
  cameras: [
    {
      id: 'door',
      source: { kind: 'rtsp', url: 'rtsp://admin:p@ss:w0rd@10.0.0.5:554/stream1' },
      width: 640,
      height: 480,
      fps: 10,
      restart: { initialDelayMs: 1000, maxDelayMs: 30000, stallTimeoutMs: 10000, healthyAfterMs: 30000 },
    },
  ],
  models: {
    update: { manifestUrl: 'https://updates.example.com/m.json?channel=stable&access_token=abc123' },
  },
}) as Config;

describe('redactSecrets', () => {
  const redacted = redactSecrets(config);

  it('replaces passwords and private key paths', () => {
    expect(redacted.mqtt.password).toBe(REDACTED);
    expect(redacted.mqtt.tls.key).toBe(REDACTED);
  });

  it('removes credentials from URLs but keeps the rest of the URL', () => {
    expect(redacted.mqtt.url).toBe('mqtts://dev:***@broker:8883');
    expect(redacted.cameras[0].source).toEqual({
      kind: 'rtsp',
      url: 'rtsp://admin:***@10.0.0.5:554/stream1',
    });
    expect(redacted.models.update.manifestUrl).toBe(
      'https://updates.example.com/m.json?channel=stable&access_token=***',
    );
  });

  it('leaves everything else alone, including public keys and usernames', () => {
    expect(redacted.mqtt.username).toBe('dev');
    expect(redacted.mqtt.tls.cert).toBe('/etc/facegate/client.pem');
    expect({ ...redacted, mqtt: undefined, cameras: undefined, models: undefined }).toEqual({
      ...config,
      mqtt: undefined,
      cameras: undefined,
      models: undefined,
    });
    expect(JSON.stringify(redacted)).not.toMatch(/hunter2|s3cret|p@ss|abc123|client\.key/);
  });

  it('does not modify its input and still produces a valid config', () => {
    expect(config.mqtt.password).toBe('hunter2');
    expect(validateConfig(redacted).ok).toBe(true);
  });

  it('leaves a config without secrets unchanged', () => {
    const plain = loadConfig({ env: {} });
    expect(redactSecrets(plain)).toEqual(plain);
  });

  it.each([
    ['http://cam.local/video.cgi?user=admin&pwd=hunter2', 'http://cam.local/video.cgi?user=admin&pwd=***'],
    ['http://cam.local/snap.jpg?usr=a&pass=hunter2&res=1', 'http://cam.local/snap.jpg?usr=a&pass=***&res=1'],
    ['http://cam.local/snap.jpg?loginPw=hunter2', 'http://cam.local/snap.jpg?loginPw=***'],
    ['rtsp://admin:hun/ter2@10.0.0.5/s', 'rtsp://admin:***@10.0.0.5/s'],
    ['rtsp://admin:hun@ter2@10.0.0.5/s', 'rtsp://admin:***@10.0.0.5/s'],
    ['ffmpeg -i rtsp://admin:hunter2@cam/s -f null', 'ffmpeg -i rtsp://admin:***@cam/s -f null'],
    ['rtsp://cam.local:554/s', 'rtsp://cam.local:554/s'],
  ])('redacts the credentials in %s', (url, expected) => {
    const withUrl = mergeConfig(loadConfig({ env: {} }), {
      cameras: [{ ...config.cameras[0], source: { kind: 'http', url } }],
    }) as Config;
    expect((redactSecrets(withUrl).cameras[0].source as { url: string }).url).toBe(expected);
  });
});
