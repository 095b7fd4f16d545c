// `facegate doctor`: checks what a device needs to work as a door, each check one result with a fix.
// The offline checks read only this machine (models, kernels, clock, disk, memory, temperature); the
// others need the camera or the broker and are skipped with --offline.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statfsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connectAsync } from 'mqtt';
import { createFrameSource } from '../capture/index.ts';
import type { Config } from '../config/index.ts';
import { loadKernels } from '../engine/kernels-addon.ts';
import { ortInt8Saturates } from '../engine/ort.ts';
import { loadModel, manifestPathFor } from '../models/manifest.ts';
import { modelSlots } from '../pipeline/analyzer.ts';
import { recordingLogger } from '../util/log.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

export interface DoctorOptions {
  /** Skip the checks that need the camera or the network. */
  offline: boolean;
  /** How long the camera and the broker get to answer. */
  timeoutMs: number;
  /** Root of /sys and /proc files read for temperature and throttling (tests). */
  sysRoot?: string;
}

const MIN_FREE_DISK_BYTES = 200 * 1024 * 1024;
const MIN_AVAILABLE_MEMORY_BYTES = 300 * 1024 * 1024;
/** A Pi throttles at 80-85 °C; warn a little before. */
const HOT_CELSIUS = 75;

type Check = (config: Config, opts: DoctorOptions) => Promise<CheckResult> | CheckResult;

const OFFLINE_CHECKS: Check[] = [
  checkModels,
  checkKernels,
  checkClock,
  checkDisk,
  checkMemory,
  checkTemperature,
];
const ONLINE_CHECKS: Check[] = [checkCamera, checkBroker];

export async function runDoctor(config: Config, opts: DoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of [...OFFLINE_CHECKS, ...ONLINE_CHECKS]) {
    if (opts.offline && ONLINE_CHECKS.includes(check)) {
      results.push({
        name: check.name.replace(/^check/, '').toLowerCase(),
        status: 'skip',
        detail: '--offline',
      });
      continue;
    }
    try {
      results.push(await check(config, opts));
    } catch (e) {
      const name = check.name.replace(/^check/, '').toLowerCase();
      results.push({ name, status: 'fail', detail: (e as Error).message, fix: 'see the message' });
    }
  }
  return results;
}

function checkModels(config: Config): CheckResult {
  const { models } = config;
  const analyzer = { ...config, models: { ...models, dir: resolve(models.dir) } };
  const seen: string[] = [];
  const problems: string[] = [];
  for (const role of ['detector', 'embedder'] as const) {
    const active = modelSlots(analyzer, role).resolveActive();
    problems.push(...active.problems);
    seen.push(`${active.model.manifest.name} ${active.model.manifest.precision} ${active.source}`);
  }
  if (config.presentationAttack.enabled) {
    for (const name of [models.antispoof, models.liveness]) {
      const model = loadModel(manifestPathFor(resolve(models.dir), name, models.precision));
      seen.push(`${model.manifest.name} ${model.manifest.precision}`);
    }
  }
  if (problems.length > 0)
    return {
      name: 'models',
      status: 'warn',
      detail: `running ${seen.join(', ')}; skipped: ${problems.join('; ')}`,
      fix: 'send the model again (model/update) or model/rollback',
    };
  return { name: 'models', status: 'ok', detail: `${seen.join(', ')} match their manifests` };
}

function checkKernels(config: Config): CheckResult {
  const warnings: string[] = [];
  const kernels = loadKernels({ log: recordingLogger((_level, message) => warnings.push(message)) });
  const engine = config.models.engine;
  if (!kernels) {
    return engine === 'kernels'
      ? {
          name: 'kernels',
          status: 'warn',
          detail: `models.engine is kernels but the addon does not load, so the embedder runs on ONNX Runtime: ${warnings.join('; ')}`,
          fix: 'reinstall the release (provision.sh --bundle) for this board',
        }
      : { name: 'kernels', status: 'ok', detail: 'not used (models.engine: ort)' };
  }
  // ORT's int8 drifts from exact arithmetic on x86 without VNNI; the kernels stay exact (docs/kernels.md).
  if (engine === 'ort' && config.models.precision === 'int8' && ortInt8Saturates())
    return {
      name: 'kernels',
      status: 'warn',
      detail: `models.engine is ort, whose int8 saturates on this CPU (x86 without VNNI); the kernels (${kernels.info().bestIsa}) compute it exactly`,
      fix: 'set models.engine: kernels',
    };
  const info = kernels.info();
  const slow = info.bestIsa === 'scalar';
  return {
    name: 'kernels',
    status: slow && engine === 'kernels' ? 'warn' : 'ok',
    detail: `${info.isa} in use (best on this CPU: ${info.bestIsa}), ${info.threads} threads; models.engine: ${engine}`,
    ...(slow && engine === 'kernels' ? { fix: 'no SIMD path on this CPU: set models.engine: ort' } : {}),
  };
}

/** TLS certificates and signed commands fail on a clock before this release was made. */
function checkClock(): CheckResult {
  const built = statSync(fileURLToPath(import.meta.url)).mtime;
  const now = new Date();
  if (now < built)
    return {
      name: 'clock',
      status: 'fail',
      detail: `${now.toISOString()} is before this release was built (${built.toISOString()})`,
      fix: 'set the time: timedatectl set-ntp true (needs an NTP server) or date -s',
    };
  return { name: 'clock', status: 'ok', detail: now.toISOString() };
}

function checkDisk(config: Config): CheckResult {
  const dir = existingParent(resolve(config.dataDir));
  const stats = statfsSync(dir);
  const free = stats.bavail * stats.bsize;
  const detail = `${(free / 2 ** 30).toFixed(1)} GiB free for ${dir}`;
  return free < MIN_FREE_DISK_BYTES
    ? {
        name: 'disk',
        status: 'fail',
        detail,
        fix: 'free space: old gallery backups, journal (journalctl --vacuum-size=50M)',
      }
    : { name: 'disk', status: 'ok', detail };
}

function checkMemory(_config: Config, opts: DoctorOptions): CheckResult {
  const meminfo = readFileSync(`${opts.sysRoot ?? ''}/proc/meminfo`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0);
  const available = kib('MemAvailable') * 1024;
  const detail = `${(available / 2 ** 20).toFixed(0)} MiB available of ${(kib('MemTotal') / 1024).toFixed(0)} MiB`;
  return available < MIN_AVAILABLE_MEMORY_BYTES
    ? { name: 'memory', status: 'warn', detail, fix: 'stop other services, or set models.precision: int8' }
    : { name: 'memory', status: 'ok', detail };
}

/** SoC temperature, and on a Pi the firmware's throttling flags (vcgencmd get_throttled). */
async function checkTemperature(_config: Config, opts: DoctorOptions): Promise<CheckResult> {
  const root = opts.sysRoot ?? '';
  const zone = `${root}/sys/class/thermal/thermal_zone0/temp`;
  const celsius = existsSync(zone) ? Number(readFileSync(zone, 'utf8')) / 1000 : null;
  const throttled = await piThrottled(root);
  if (celsius === null && throttled === null)
    return { name: 'temperature', status: 'skip', detail: 'no thermal zone on this machine' };
  const parts = [celsius === null ? 'no thermal zone' : `${celsius.toFixed(1)} °C`];
  if (throttled !== null) parts.push(`throttled flags 0x${throttled.toString(16)}`);
  // Bits 0-3: under-voltage, frequency capped, throttled, soft temperature limit, right now.
  const throttledNow = throttled !== null && (throttled & 0xf) !== 0;
  const hot = celsius !== null && celsius >= HOT_CELSIUS;
  if (throttledNow || hot)
    return {
      name: 'temperature',
      status: 'warn',
      detail: parts.join(', '),
      fix:
        throttled !== null && throttled & 0x1
          ? 'under-voltage: use the official power supply'
          : 'add a heatsink or fan',
    };
  return { name: 'temperature', status: 'ok', detail: parts.join(', ') };
}

async function piThrottled(root: string): Promise<number | null> {
  const sysfs = `${root}/sys/devices/platform/soc/soc:firmware/get_throttled`;
  if (existsSync(sysfs)) return Number.parseInt(readFileSync(sysfs, 'utf8').trim(), 16);
  try {
    const { stdout } = await promisify(execFile)('vcgencmd', ['get_throttled'], { timeout: 2000 });
    const match = /throttled=(0x[0-9a-f]+)/i.exec(stdout);
    return match ? Number.parseInt(match[1], 16) : null;
  } catch {
    return null;
  }
}

async function checkCamera(config: Config, opts: DoctorOptions): Promise<CheckResult> {
  const delivered: string[] = [];
  for (const camera of config.cameras) {
    const source = createFrameSource(camera);
    const errors: string[] = [];
    source.on('error', (e) => errors.push(e.message));
    source.on('restart', (r) => errors.push(r.reason));
    try {
      await source.start();
      const frame = await Promise.race([source.next(), sleep(opts.timeoutMs).then(() => null)]);
      if (!frame)
        return {
          name: 'camera',
          status: 'fail',
          detail: `camera ${camera.id} (${camera.source.kind}) delivered no frame in ${opts.timeoutMs} ms${errors.length ? `: ${errors.at(-1)}` : ''}`,
          fix: 'check the cable and the source settings (docs/capture.md); is facegate running and holding it?',
        };
      delivered.push(`${camera.id} ${frame.width}x${frame.height}`);
    } finally {
      await source.stop();
    }
  }
  return { name: 'camera', status: 'ok', detail: `delivering frames: ${delivered.join(', ')}` };
}

async function checkBroker(config: Config, opts: DoctorOptions): Promise<CheckResult> {
  const { url, username, password, tls } = config.mqtt;
  if (!url) return { name: 'broker', status: 'ok', detail: 'no broker configured: facegate runs its own' };
  const files = await Promise.all([tls.ca, tls.cert, tls.key].map((f) => (f ? readFile(f) : undefined)));
  try {
    const client = await connectAsync(url, {
      username,
      password,
      ca: files[0],
      cert: files[1],
      key: files[2],
      rejectUnauthorized: tls.rejectUnauthorized,
      connectTimeout: opts.timeoutMs,
      reconnectPeriod: 0,
      clientId: `facegate-doctor-${process.pid}`,
    });
    await client.endAsync();
  } catch (e) {
    return {
      name: 'broker',
      status: 'fail',
      detail: `${url}${username ? ` as ${username}` : ''}: ${(e as Error).message}`,
      fix: 'check mqtt.url, the credentials (FACEGATE_MQTT__PASSWORD) and mqtt.tls.ca; is the broker running?',
    };
  }
  return {
    name: 'broker',
    status: 'ok',
    detail: `${url}${username ? ` as ${username}` : ''} accepted the connection`,
  };
}

function existingParent(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
