// Capture integration harness: loopback stream servers fed by real ffmpeg encoders, fake camera
// programs, and waits that always end.
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaptureSource, SourceEvents } from '../../../runtime/capture/source.ts';
import type { Frame } from '../../../runtime/capture/types.ts';
import { DOOR_CLIP } from '../../helpers/paths.ts';

export const CLIP = DOOR_CLIP;

const QUIET = ['-nostdin', '-hide_banner', '-loglevel', 'error'];

/** A port the OS just handed out, for servers (ffmpeg) that must be told one. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

async function udpSocket(): Promise<UdpSocket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

export async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The next frame, or a test failure after timeoutMs. */
export async function nextFrame(source: CaptureSource, timeoutMs: number): Promise<Frame | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no frame from ${source.camera} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([source.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the event's arguments, or fails the test after timeoutMs. (events.once would also
 * reject on 'error', which sources emit for problems they survive.) */
export function nextEvent<K extends keyof SourceEvents>(
  source: CaptureSource,
  event: K,
  timeoutMs: number,
): Promise<SourceEvents[K]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: SourceEvents[K]) => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      source.off(event, listener as never);
      reject(new Error(`no '${event}' from ${source.camera} within ${timeoutMs} ms`));
    }, timeoutMs);
    source.once(event, listener as never);
  });
}

/** Proves frames come from the picture, not a zeroed buffer: many distinct byte values. */
export function distinctValues(rgb: Buffer): number {
  return new Set(rgb).size;
}

export interface FakeCameraOptions {
  /** What the program does after the last frame: exit cleanly, or hang like a wedged camera. */
  end: 'exit' | 'hang';
  /** Seconds between frames, as a camera paces them; 0 writes them back to back. */
  interval: number;
  /** Passes over the frames. */
  repeat?: number;
  /** Ignore SIGTERM, as a wedged program might. */
  ignoreSigterm?: boolean;
}

/**
 * Writes an executable shell script standing in for a camera program: it records its arguments and
 * prints `frames` (recorded encoder output, cut into frames) to stdout one at a time.
 */
export async function fakeCamera(
  dir: string,
  name: string,
  frames: Buffer[],
  { end, interval, repeat = 1, ignoreSigterm = false }: FakeCameraOptions,
): Promise<{ path: string; argsFile: string }> {
  const framesDir = join(dir, `${name}.frames`);
  await mkdir(framesDir);
  await Promise.all(frames.map((frame, i) => writeFile(join(framesDir, String(i).padStart(5, '0')), frame)));
  const path = join(dir, name);
  const argsFile = join(dir, `${name}.args`);
  const script = [
    '#!/bin/sh',
    `printf '%s\\n' "$@" > '${argsFile}'`,
    ignoreSigterm ? "trap '' TERM" : '',
    `i=0; while [ $i -lt ${repeat} ]; do`,
    `  for f in '${framesDir}'/*; do cat "$f"; ${interval > 0 ? `sleep ${interval}` : ':'}; done`,
    '  i=$((i + 1))',
    'done',
    // exec: the source signals its own child, so the hanging process must be that child.
    end === 'hang' ? 'exec sleep 3600' : 'exit 0',
  ].join('\n');
  await writeFile(path, `${script}\n`, { mode: 0o755 });
  return { path, argsFile };
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `facegate-${prefix}-`));
}

export async function killHard(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await exited;
}

export interface RtspServer {
  url: string;
  /** The ffmpeg encoder feeding RTP: SIGSTOP it to stall every client. */
  encoder: ChildProcess;
  close(): Promise<void>;
}

/** H.264 NAL unit type an RTP packet starts with, looking into a STAP-A aggregate. */
function nalType(packet: Buffer): number {
  const type = packet[12] & 0x1f;
  return type === 24 ? packet[15] & 0x1f : type;
}

/**
 * Debian's ffmpeg can publish RTSP but not serve PLAY, so this is a minimal RTSP server
 * (OPTIONS/DESCRIBE/SETUP/PLAY, RTP interleaved over TCP only) relaying the RTP packets of a
 * live libx264 encode of the clip. Short GOP so a late joiner decodes within half a second.
 */
export async function startRtspServer(): Promise<RtspServer> {
  const rtp = await udpSocket();
  const rtcp = await udpSocket();
  const sdpPath = join(tmpdir(), `facegate-rtsp-${process.pid}-${rtp.address().port}.sdp`);
  const target = `rtp://127.0.0.1:${rtp.address().port}?rtcpport=${rtcp.address().port}`;
  // biome-ignore format: one ffmpeg option per line
  const encoder = spawn('ffmpeg', [
    ...QUIET, '-re', '-stream_loop', '-1', '-i', CLIP, '-an',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15', '-bf', '0',
    // In-band SPS/PPS at every keyframe: the SDP of an rtp muxer carries none for libx264.
    '-x264-params', 'repeat-headers=1',
    '-f', 'rtp', '-sdp_file', sdpPath, target,
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  let sdp = '';
  const deadline = Date.now() + 10_000;
  while (!sdp.includes('m=video')) {
    if (Date.now() > deadline) throw new Error('encoder wrote no SDP');
    await new Promise((r) => setTimeout(r, 50));
    sdp = await readFile(sdpPath, 'utf8').catch(() => '');
  }
  const players = new Set<Socket>();
  // Like a camera, a new player gets packets from the next keyframe's SPS on, so it decodes cleanly.
  const joining = new Set<Socket>();
  const relay = (channel: number) => (packet: Buffer) => {
    const startsKeyframe = channel === 0 && nalType(packet) === 7;
    const header = Buffer.from([0x24, channel, packet.length >> 8, packet.length & 0xff]);
    for (const socket of players) {
      if (joining.has(socket) && !startsKeyframe) continue;
      joining.delete(socket);
      socket.write(Buffer.concat([header, packet]));
    }
  };
  rtp.on('message', relay(0));
  rtcp.on('message', relay(1));

  const server: Server = createServer((socket) => {
    socket.on('error', () => players.delete(socket));
    socket.on('close', () => players.delete(socket));
    let pending = '';
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const request = pending.slice(0, end);
        pending = pending.slice(end + 4);
        respond(socket, request);
      }
    });
  });
  const respond = (socket: Socket, request: string) => {
    const [method, uri] = request.split(' ');
    const cseq = /^CSeq:\s*(\d+)/im.exec(request)?.[1] ?? '0';
    const headers: string[] = [`CSeq: ${cseq}`];
    let body = '';
    if (method === 'OPTIONS') headers.push('Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER');
    if (method === 'DESCRIBE') {
      body = `${sdp
        .replace(/^m=video \d+/m, 'm=video 0')
        .replace(/^c=.*$/m, 'c=IN IP4 0.0.0.0')
        .trimEnd()}\r\na=control:track0\r\n`;
      headers.push(
        'Content-Type: application/sdp',
        `Content-Base: ${uri}/`,
        `Content-Length: ${body.length}`,
      );
    }
    if (method === 'SETUP') headers.push('Transport: RTP/AVP/TCP;unicast;interleaved=0-1', 'Session: 1');
    if (method === 'PLAY') headers.push('Session: 1', 'Range: npt=0.000-');
    socket.write(`RTSP/1.0 200 OK\r\n${headers.join('\r\n')}\r\n\r\n${body}`);
    if (method === 'PLAY') {
      players.add(socket);
      joining.add(socket);
    }
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `rtsp://127.0.0.1:${port}/cam`,
    encoder,
    async close() {
      await killHard(encoder);
      for (const socket of players) socket.destroy();
      server.close();
      rtp.close();
      rtcp.close();
      await rm(sdpPath, { force: true });
    },
  };
}

/** Whether something listens on the loopback TCP port, without connecting (a connection would be served). */
async function listening(port: number): Promise<boolean> {
  const table = await readFile('/proc/net/tcp', 'utf8');
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((row) => {
    const [, address, , state] = row.trim().split(/\s+/);
    return address?.endsWith(local) && state === '0A';
  });
}

export interface MjpegHttpServer {
  url: string;
  server: ChildProcess;
  close(): Promise<void>;
}

/** ffmpeg's own HTTP server: multipart MJPEG of the clip in real time, to one client, then it exits. */
export async function startMjpegHttpServer(port: number): Promise<MjpegHttpServer> {
  const url = `http://127.0.0.1:${port}/`;
  // biome-ignore format: one ffmpeg option per line
  const server = spawn('ffmpeg', [
    ...QUIET, '-re', '-stream_loop', '-1', '-i', CLIP, '-an',
    '-c:v', 'mjpeg', '-q:v', '5', '-f', 'mpjpeg', '-listen', '1', url,
  ], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`ffmpeg is not serving ${url}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, server, close: () => killHard(server) };
}
