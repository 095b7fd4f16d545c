// Installed model versions for one model name, with a current and a previous slot:
//
//   <dataDir>/models/<name>/active.json             {"current": "<slot>", "previous": "<slot>"}
//   <dataDir>/models/<name>/versions/<slot>/        manifest.json + the .onnx it names
//   <dataDir>/models/<name>/.staging-XXXXXX/        a version being written (removed by prune)
//
// A slot directory only ever appears under versions/ complete and fsynced (written in staging, verified,
// renamed), and active.json only ever changes by an atomic replace after that. So whenever the power goes,
// active.json is the old or the new pointer and both name complete slots.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type LoadedModel,
  loadModel,
  type ModelManifest,
  manifestPathFor,
  type Precision,
  validateManifest,
} from '../models/manifest.ts';
import { fsyncDir, writeFileAtomic } from '../util/atomic-file.ts';

export interface SlotOptions {
  /** Writable device storage; slots live in <dataDir>/models/<name>/. */
  dataDir: string;
  name: string;
  /** The models shipped with the firmware: the last resort when no slot is usable. */
  bundledDir: string;
  precision: Precision;
}

export interface SlotPointer {
  current: string;
  previous?: string;
}

export interface ActiveModel {
  model: LoadedModel;
  source: 'current' | 'previous' | 'bundled';
  /** The slot directory name, unless bundled. */
  slot?: string;
  /** Why the slots ahead of `source` were skipped; empty when the current slot was fine. */
  problems: string[];
}

const POINTER = 'active.json';
const SLOT_MANIFEST = 'manifest.json';
const STAGING_PREFIX = '.staging-';
/** "<version>-<16 hex of sha256>": the hash keeps two builds of one version apart; no "/" or "..". */
const SLOT_NAME = /^[0-9A-Za-z.+-]{1,64}-[0-9a-f]{16}$/;

export function slotName(manifest: ModelManifest): string {
  return `${manifest.version}-${manifest.sha256.slice(0, 16)}`;
}

export class ModelSlots {
  readonly dir: string;
  private readonly versionsDir: string;
  private readonly pointerPath: string;

  constructor(private readonly opts: SlotOptions) {
    this.dir = join(opts.dataDir, 'models', opts.name);
    this.versionsDir = join(this.dir, 'versions');
    this.pointerPath = join(this.dir, POINTER);
  }

  get name(): string {
    return this.opts.name;
  }

  /** The pointer, or undefined before the first install; throws when it is unreadable. */
  pointer(): SlotPointer | undefined {
    if (!existsSync(this.pointerPath)) return undefined;
    let parsed: Partial<SlotPointer>;
    try {
      parsed = JSON.parse(readFileSync(this.pointerPath, 'utf8'));
    } catch (e) {
      throw new Error(`${this.pointerPath} is not valid JSON (${(e as Error).message})`);
    }
    const valid = (s: unknown) => typeof s === 'string' && SLOT_NAME.test(s);
    if (!parsed || !valid(parsed.current) || (parsed.previous !== undefined && !valid(parsed.previous))) {
      throw new Error(`${this.pointerPath} does not name valid slots`);
    }
    return { current: parsed.current as string, ...(parsed.previous ? { previous: parsed.previous } : {}) };
  }

  /** The model to run: current slot, else previous slot, else the bundled model; each verified by loadModel. */
  resolveActive(): ActiveModel {
    const problems: string[] = [];
    let pointer: SlotPointer | undefined;
    try {
      pointer = this.pointer();
    } catch (e) {
      problems.push((e as Error).message);
    }
    const candidates = [
      ['current', pointer?.current],
      ['previous', pointer?.previous],
    ] as const;
    for (const [source, slot] of candidates) {
      if (!slot) continue;
      try {
        return { model: this.loadSlot(slot), source, slot, problems };
      } catch (e) {
        problems.push(`${source} slot ${slot}: ${(e as Error).message}`);
      }
    }
    try {
      return { model: this.bundled(), source: 'bundled', problems };
    } catch (e) {
      problems.push(`bundled: ${(e as Error).message}`);
      throw new Error(`no usable ${this.opts.name} model: ${problems.join('; ')}`);
    }
  }

  /**
   * Writes the version completely (fsynced, then read back through loadModel) before the pointer moves to
   * it; the running slot becomes `previous`. Returns the new slot's name.
   */
  install(manifest: ModelManifest, onnx: Uint8Array): string {
    const errors = validateManifest(manifest);
    if (errors.length > 0) throw new Error(`cannot install: invalid manifest: ${errors.join('; ')}`);
    if (manifest.name !== this.opts.name)
      throw new Error(`cannot install ${manifest.name} into the ${this.opts.name} slots`);
    this.ensureDirs();
    let running: string | undefined;
    try {
      running = this.resolveActive().slot;
    } catch {
      // Nothing usable at all: the new version simply has no previous.
    }
    const slot = slotName(manifest);
    // Reinstalling the running version must not cost the previous one.
    const previous = running !== slot ? running : this.pointer()?.previous;
    const target = join(this.versionsDir, slot);
    if (existsSync(target) && !this.usable(slot)) rmSync(target, { recursive: true, force: true });
    if (!existsSync(target)) {
      const staging = mkdtempSync(join(this.dir, STAGING_PREFIX));
      try {
        writeFileAtomic(join(staging, manifest.file), onnx);
        writeFileAtomic(join(staging, SLOT_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
        loadModel(join(staging, SLOT_MANIFEST));
        renameSync(staging, target);
        fsyncDir(this.versionsDir);
      } catch (e) {
        rmSync(staging, { recursive: true, force: true });
        throw e;
      }
    }
    this.writePointer({ current: slot, ...(previous && previous !== slot ? { previous } : {}) });
    this.prune();
    return slot;
  }

  /**
   * Makes the previous slot current. By default the two swap, so an operator can roll forward again;
   * `discardCurrent` drops the current slot instead (it failed its health check). With no previous slot
   * the pointer goes, which means the bundled model (and the slot is pruned).
   */
  rollback(opts: { discardCurrent?: boolean } = {}): LoadedModel {
    const model = this.previous();
    const { current, previous } = this.pointer() as SlotPointer;
    if (!previous) {
      rmSync(this.pointerPath);
      fsyncDir(this.dir);
    } else
      this.writePointer(
        opts.discardCurrent ? { current: previous } : { current: previous, previous: current },
      );
    if (opts.discardCurrent || !previous) this.prune();
    return model;
  }

  /** What rollback() goes back to, verified: the previous slot, or the bundled model when there is none. */
  previous(): LoadedModel {
    const pointer = this.pointer();
    if (!pointer)
      throw new Error(`${this.opts.name}: the bundled model is running, there is nothing to roll back to`);
    if (!pointer.previous) return this.bundled();
    try {
      return this.loadSlot(pointer.previous);
    } catch (e) {
      throw new Error(
        `${this.opts.name}: previous version ${pointer.previous} is not usable: ${(e as Error).message}`,
      );
    }
  }

  /** Deletes every version but current and previous, and leftovers of interrupted writes. Returns what went. */
  prune(): string[] {
    const pointer = this.pointer();
    const keep = new Set([pointer?.current, pointer?.previous]);
    const removed: string[] = [];
    const remove = (path: string, entry: string) => {
      rmSync(path, { recursive: true, force: true });
      removed.push(entry);
    };
    if (existsSync(this.versionsDir)) {
      for (const entry of readdirSync(this.versionsDir))
        if (!keep.has(entry)) remove(join(this.versionsDir, entry), entry);
    }
    if (existsSync(this.dir)) {
      for (const entry of readdirSync(this.dir)) {
        // writeFileAtomic's temp file for the pointer, left behind by a crash mid-write.
        const staleTemp = entry.startsWith(`.${POINTER}.`) && entry.endsWith('.tmp');
        if (entry.startsWith(STAGING_PREFIX) || staleTemp) remove(join(this.dir, entry), entry);
      }
    }
    return removed;
  }

  private bundled(): LoadedModel {
    return loadModel(manifestPathFor(this.opts.bundledDir, this.opts.name, this.opts.precision));
  }

  private loadSlot(slot: string): LoadedModel {
    const model = loadModel(join(this.versionsDir, slot, SLOT_MANIFEST));
    if (model.manifest.name !== this.opts.name)
      throw new Error(`holds a ${model.manifest.name} model, not ${this.opts.name}`);
    return model;
  }

  private usable(slot: string): boolean {
    try {
      this.loadSlot(slot);
      return true;
    } catch {
      return false;
    }
  }

  private writePointer(pointer: SlotPointer): void {
    writeFileAtomic(this.pointerPath, `${JSON.stringify(pointer)}\n`);
  }

  /** Created durably, so a pointer written later cannot outlive its directory after a power cut. */
  private ensureDirs(): void {
    const first = mkdirSync(this.versionsDir, { recursive: true });
    if (first === undefined) return;
    for (let dir = this.versionsDir; ; dir = dirname(dir)) {
      fsyncDir(dirname(dir));
      if (dir === first) break;
    }
  }
}
