import { describe, expect, it } from 'vitest';
import { manifestUrlProblem } from '../../../runtime/control/ports.ts';
import { defaultConfig } from '../../helpers/control-fakes.ts';

const settings = (patch: object = {}) => defaultConfig({ models: { update: patch } }).models.update;

describe('manifestUrlProblem', () => {
  it('allows models.update.manifestUrl and its origin, and the allowed origins', () => {
    const configured = settings({
      manifestUrl: 'https://updates.example.com/facegate/manifest.json',
      allowedOrigins: ['http://10.0.0.2:8080'],
    });
    expect(manifestUrlProblem('https://updates.example.com/facegate/manifest.json', configured)).toBeNull();
    expect(manifestUrlProblem('https://updates.example.com/beta/manifest.json', configured)).toBeNull();
    expect(manifestUrlProblem('http://10.0.0.2:8080/m.json', configured)).toBeNull();
  });

  it.each([
    ['http://127.0.0.1:9/m.json', 'http://127.0.0.1:9'],
    ['http://169.254.169.254/latest/meta-data', 'http://169.254.169.254'],
    ['https://updates.example.com.evil.test/m.json', 'https://updates.example.com.evil.test'],
    ['http://updates.example.com/m.json', 'http://updates.example.com'],
  ])('refuses %s, naming what is allowed and without credentials or query', (url, origin) => {
    const configured = settings({ manifestUrl: 'https://updates.example.com/m.json' });
    expect(manifestUrlProblem(url, configured)).toBe(
      `manifestUrl ${origin}${new URL(url).pathname} is refused: the device fetches models only from https://updates.example.com (models.update.manifestUrl's origin and models.update.allowedOrigins, set on the device)`,
    );
  });

  it('refuses everything when no origin is configured, and other schemes', () => {
    expect(manifestUrlProblem('https://a.example/m.json?token=x', settings())).toMatch(
      /^manifestUrl https:\/\/a\.example\/m\.json is refused: the device fetches models only from nowhere yet/,
    );
    expect(manifestUrlProblem('file:///etc/passwd', settings())).toBe(
      'manifestUrl must be http or https, not file:',
    );
  });
});
