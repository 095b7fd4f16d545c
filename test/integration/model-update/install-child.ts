// Child process for crash-safety.test.ts: installs new versions of a model, one after another, until it
// is killed.   node --import tsx install-child.ts <dataDir> <bundledDir> <source manifest>

import { ModelSlots } from '../../../runtime/model-update/slots.ts';
import { loadModel } from '../../../runtime/models/manifest.ts';

const [dataDir, bundledDir, sourceManifest] = process.argv.slice(2);
const { manifest, onnx } = loadModel(sourceManifest);
const slots = new ModelSlots({ dataDir, name: manifest.name, bundledDir, precision: manifest.precision });
process.stdout.write('ready\n');
for (let i = 1; ; i++) {
  slots.install({ ...manifest, version: `9.${process.pid}.${i}` }, onnx);
  process.stdout.write(`installed 9.${process.pid}.${i}\n`);
}
