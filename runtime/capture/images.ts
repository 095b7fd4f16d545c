// A still image or a folder of them as a camera: for demos and evaluations without a camera.
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { CameraConfig } from './config.ts';
import { type DecodedImage, decodeImage } from './decode.ts';
import { CaptureSource } from './source.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);

export class ImageSource extends CaptureSource {
  private running: Promise<void> | undefined;

  constructor(config: CameraConfig) {
    super(config, config.source.realtime === false);
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    this.running ??= this.run();
  }

  override async stop(): Promise<void> {
    await super.stop();
    await this.running;
  }

  /** Listed again on every pass, so images added to the folder join the loop. */
  private async list(): Promise<string[]> {
    const path = String(this.config.source.path);
    if (!(await stat(path)).isDirectory()) return [path];
    const names = await readdir(path);
    return names
      .filter((name) => IMAGE_EXTENSIONS.has(extname(name).toLowerCase()))
      .sort()
      .map((name) => join(path, name));
  }

  private async run(): Promise<void> {
    const { source, width, height, fps } = this.config;
    const realtime = source.realtime !== false;
    const intervalMs = 1000 / fps;
    let due = Date.now();
    while (!this.stopped) {
      let files: string[] = [];
      let problem = `no decodable image in ${source.path}`;
      try {
        files = await this.list();
      } catch (error) {
        problem = `cannot list ${source.path}: ${(error as Error).message}`;
      }
      let decoded = 0;
      for (const file of files) {
        let image: DecodedImage;
        try {
          image = await decodeImage(file, width, height);
        } catch (error) {
          this.report(`image ${file} skipped: ${(error as Error).message}`);
          continue;
        }
        decoded += 1;
        if (realtime) {
          await this.sleep(due - Date.now());
          // After falling behind (slow decode) carry on at the cap instead of bursting to catch up.
          due = Math.max(due + intervalMs, Date.now());
        }
        if (this.stopped) return;
        this.deliver(this.stamp(), image.rgb, image.width, image.height);
        if (!realtime) await this.slot.whenEmpty();
      }
      if (decoded === 0) await this.sleep(this.failed(problem));
      else if (source.loop === false) {
        this.endOfStream();
        return;
      }
    }
  }
}
