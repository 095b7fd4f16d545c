// Camera configuration as the config subsystem hands it to createFrameSource().

export const SOURCE_KINDS = ['images', 'video', 'rtsp', 'http', 'v4l2', 'rpicam', 'jetson-csi'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

export interface SourceConfig {
  kind: SourceKind;
  /** images: an image file or a folder of .jpg/.jpeg/.png; video: a video file. */
  path?: string;
  /** rtsp: rtsp://…; http: a multipart MJPEG URL. */
  url?: string;
  /** v4l2: /dev/videoN. */
  device?: string;
  /** video, images: start over at the end. Default false for video, true for images (a still camera). */
  loop?: boolean;
  /** rpicam (--camera) and jetson-csi (sensor-id): which CSI camera. Default 0. */
  sensorId?: number;
  /**
   * video, images. true (default, a demo): play at the source's own pace, newest frame wins like a
   * live camera. false (a benchmark or evaluation): as fast as the consumer takes frames, every frame
   * handed over in order, none dropped.
   */
  realtime?: boolean;
  /** Executable to run instead of ffmpeg / rpicam-vid / gst-launch-1.0 (a wrapper script must exec). */
  binary?: string;
}

export interface RestartPolicy {
  /** First delay before restarting a failed source; doubles on each consecutive failure. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** A source with no frame for this long (including startup) counts as failed. */
  stallTimeoutMs: number;
  /** A run delivering frames this long forgives earlier failures: the next delay is initialDelayMs again. Default 30 000. */
  healthyAfterMs?: number;
}

export interface CameraConfig {
  id: string;
  source: SourceConfig;
  /** Frame size. Video sources scale to exactly this; images fit inside it keeping their aspect. */
  width: number;
  height: number;
  /** Frame rate cap. */
  fps: number;
  restart: RestartPolicy;
}

const REQUIRED: Partial<Record<SourceKind, keyof SourceConfig>> = {
  images: 'path',
  video: 'path',
  rtsp: 'url',
  http: 'url',
  v4l2: 'device',
};

/** Throws one error listing every problem, so a bad config fails at startup rather than at the first frame. */
export function checkCameraConfig(config: CameraConfig): void {
  const problems: string[] = [];
  const { source, restart } = config;
  const required = REQUIRED[source.kind];
  if (!(SOURCE_KINDS as readonly string[]).includes(source.kind))
    problems.push(`unknown source kind "${source.kind}"`);
  if (required && !source[required]) problems.push(`source.${required} is required for kind ${source.kind}`);
  for (const key of ['width', 'height'] as const) {
    if (!Number.isInteger(config[key]) || config[key] <= 0)
      problems.push(`${key} must be a positive integer`);
  }
  // GStreamer pads RGB rows to 4 bytes; fdsink would write the padding and break the frame size.
  if (source.kind === 'jetson-csi' && config.width % 4 !== 0)
    problems.push('jetson-csi width must be a multiple of 4');
  if (!(config.fps > 0)) problems.push('fps must be positive');
  if (!(restart.initialDelayMs > 0)) problems.push('restart.initialDelayMs must be positive');
  if (!(restart.maxDelayMs >= restart.initialDelayMs))
    problems.push('restart.maxDelayMs must be >= initialDelayMs');
  if (!(restart.stallTimeoutMs > 0)) problems.push('restart.stallTimeoutMs must be positive');
  if (problems.length > 0) throw new Error(`camera ${config.id}: ${problems.join('; ')}`);
}
