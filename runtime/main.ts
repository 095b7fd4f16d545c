// `npm start`: facegate with the embedded defaults (or --config FILE / --board NAME).
import * as ort from 'onnxruntime-node';
import { runCommand } from './cli/run.ts';

ort.env.logLevel = 'error';
try {
  process.exitCode = await runCommand(process.argv.slice(2));
} catch (e) {
  console.error(`facegate: ${(e as Error).message}`);
  process.exitCode = 1;
}
