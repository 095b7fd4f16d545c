// Can a candidate model replace the running one without the pipeline noticing? The pipeline's pre- and
// post-processing was written for the running model's manifest, and the candidate's manifest must not
// lie about its graph, so both are checked: manifest against manifest, then graph against manifest.
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '../models/manifest.ts';

export interface CompatResult {
  ok: boolean;
  /** Every mismatch found, in words. */
  reasons: string[];
}

export async function checkCompatibility(
  candidate: { manifest: ModelManifest; onnx: Uint8Array },
  running: ModelManifest,
): Promise<CompatResult> {
  const reasons = [
    ...manifestMismatches(candidate.manifest, running),
    ...(await graphMismatches(candidate.manifest, candidate.onnx)),
  ];
  return { ok: reasons.length === 0, reasons };
}

function manifestMismatches(c: ModelManifest, r: ModelManifest): string[] {
  const out: string[] = [];
  if (c.name !== r.name) out.push(`name is ${c.name}, the running model is ${r.name}`);
  if (c.task !== r.task) out.push(`task is ${c.task}, the running model is a ${r.task} model`);
  if (c.input.layout !== r.input.layout)
    out.push(`input layout ${c.input.layout} differs from ${r.input.layout}`);
  if (c.input.channelOrder !== r.input.channelOrder)
    out.push(`input channel order ${c.input.channelOrder} differs from ${r.input.channelOrder}`);
  // Detector preprocessing is fixed in code (letterbox to -1..1), so normalisation must stay as it is.
  const close = (a: number[], b: number[]) =>
    a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= 1e-6 * Math.max(1, Math.abs(b[i])));
  if (!close(c.input.mean, r.input.mean) || !close(c.input.std, r.input.std)) {
    out.push(
      `input normalisation mean ${fmt(c.input.mean)} std ${fmt(c.input.std)} differs from mean ${fmt(r.input.mean)} std ${fmt(r.input.std)}`,
    );
  }
  const [cb, ...cRest] = c.input.shape;
  const [rb, ...rRest] = r.input.shape;
  if (fmt(cRest) !== fmt(rRest))
    out.push(`input shape ${fmt(c.input.shape)} differs from ${fmt(r.input.shape)}`);
  // The embedder runs crops and their mirrors as one batch: a dynamic batch cannot become fixed.
  else if (cb !== rb && cb !== -1)
    out.push(`input batch ${cb} cannot replace ${rb === -1 ? 'a dynamic batch' : `batch ${rb}`}`);
  const shapes = (m: ModelManifest) => m.outputs.map((o) => fmt(o.shape)).sort();
  if (fmt(shapes(c)) !== fmt(shapes(r)))
    out.push(`output shapes ${shapes(c).join(' ')} differ from ${shapes(r).join(' ')}`);
  if (c.task === 'face-embedding' && !c.thresholds) out.push('an embedder must come with its FAR thresholds');
  return out;
}

async function graphMismatches(manifest: ModelManifest, onnx: Uint8Array): Promise<string[]> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  } catch (e) {
    return [`ONNX Runtime cannot load the model: ${(e as Error).message}`];
  }
  try {
    const out: string[] = [];
    if (session.inputNames.length !== 1 || session.inputNames[0] !== manifest.input.name) {
      out.push(
        `model inputs are [${session.inputNames.join(', ')}], the manifest says [${manifest.input.name}]`,
      );
    }
    const declared = new Map(manifest.outputs.map((o) => [o.name, o.shape]));
    const actual = session.outputNames;
    if (actual.length !== declared.size || actual.some((n) => !declared.has(n))) {
      out.push(
        `model outputs are [${actual.join(', ')}], the manifest says [${[...declared.keys()].join(', ')}]`,
      );
    }
    for (const meta of [...session.inputMetadata, ...session.outputMetadata]) {
      const shape = meta.name === manifest.input.name ? manifest.input.shape : declared.get(meta.name);
      if (!shape) continue;
      if (!meta.isTensor || meta.type !== 'float32') out.push(`${meta.name} is not a float32 tensor`);
      else {
        const problem = shapeMismatch(meta.shape, shape);
        if (problem) out.push(`${meta.name}: ${problem}`);
      }
    }
    if (out.length === 0) out.push(...(await probe(session, manifest, declared)));
    return out;
  } finally {
    await session.release();
  }
}

/** Declared graph dims against manifest dims (-1 = dynamic); an empty declaration means unknown. */
function shapeMismatch(graph: readonly (number | string)[], manifest: number[]): string | undefined {
  if (graph.length === 0) return undefined;
  const asText = fmt(graph.map((d) => (typeof d === 'number' && d >= 0 ? d : '?')));
  if (graph.length !== manifest.length)
    return `graph shape ${asText} has a different rank than the manifest's ${fmt(manifest)}`;
  for (let i = 0; i < graph.length; i++) {
    const g = graph[i];
    const fixed = typeof g === 'number' && g >= 0;
    if (manifest[i] === -1 ? fixed : fixed && g !== manifest[i])
      return `graph shape ${asText} does not match the manifest's ${fmt(manifest)}`;
  }
  return undefined;
}

/** One run on zeros: output shapes only become certain when the graph actually runs. */
async function probe(
  session: ort.InferenceSession,
  manifest: ModelManifest,
  declared: Map<string, number[]>,
): Promise<string[]> {
  const dims = manifest.input.shape.map((d, i) => (d === -1 ? (i === 0 ? 2 : 1) : d));
  let result: ort.InferenceSession.ReturnType;
  try {
    result = await session.run({
      [manifest.input.name]: new ort.Tensor(
        'float32',
        new Float32Array(dims.reduce((a, b) => a * b, 1)),
        dims,
      ),
    });
  } catch (e) {
    return [`a test run on ${fmt(dims)} zeros failed: ${(e as Error).message}`];
  }
  const out: string[] = [];
  for (const [name, shape] of declared) {
    const got = [...result[name].dims];
    const batchAware = shape.map((d, i) => (d === -1 && i === 0 ? dims[0] : d));
    if (got.length !== shape.length || got.some((d, i) => batchAware[i] !== -1 && d !== batchAware[i])) {
      out.push(`${name} came out ${fmt(got)} for input ${fmt(dims)}, the manifest says ${fmt(shape)}`);
    }
  }
  return out;
}

function fmt(values: readonly unknown[]): string {
  return `[${values.join(',')}]`;
}
