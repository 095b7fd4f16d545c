// `facegate <command>`: the command-line entry point. Each command lives in its own module.
import * as ort from 'onnxruntime-node';
import { benchCommand } from './bench.ts';
import { benchPipelineCommand } from './bench-pipeline.ts';
import { doctorCommand } from './doctor.ts';
import { evalCommand } from './eval.ts';
import { enrollCommand, galleryCommand, identifyCommand } from './faces.ts';
import { keysCommand } from './keys.ts';
import { runCommand } from './run.ts';

// ORT's warnings (e.g. about shape merging) are not for operators; errors still surface as exceptions.
ort.env.logLevel = 'error';

const COMMANDS: Record<string, { run: (args: string[]) => Promise<number>; help: string }> = {
  eval: {
    run: evalCommand,
    help: 'eval lfw --images DIR --pairs FILE [--precision fp32|int8] [--engine ort|kernels] [--model NAME] [--json] [--roc FILE.png] | eval sweep --images DIR --pairs FILE [--png FILE.png] | eval openset --images DIR [--cache FILE] [--json] [--png FILE.png]',
  },
  bench: { run: benchCommand, help: 'bench [--json] [--rounds N]' },
  'bench-pipeline': {
    run: benchPipelineCommand,
    help: 'bench-pipeline [--json] [--runs N] [--latency-seconds S] [--soak-seconds S] [--no-mirror]',
  },
  enroll: { run: enrollCommand, help: 'enroll --gallery PATH --name NAME IMAGE... [--config FILE]' },
  identify: { run: identifyCommand, help: 'identify --gallery PATH IMAGE... [--json] [--config FILE]' },
  gallery: { run: galleryCommand, help: 'gallery list|remove --gallery PATH [NAME] [--json]' },
  run: { run: runCommand, help: 'run [--config FILE] [--board NAME]' },
  keys: {
    run: keysCommand,
    help: 'keys generate --out PREFIX | add PUBLIC.pem | remove KEYID | list [--keys-file FILE] | sign --key PRIVATE.key --topic TOPIC [JSON]',
  },
  doctor: {
    run: doctorCommand,
    help: 'doctor [--config FILE] [--board NAME] [--json] [--offline] [--timeout-seconds S]',
  },
};

function usage(): string {
  return [
    'usage: facegate <command> [options]',
    '',
    ...Object.values(COMMANDS).map((c) => `  facegate ${c.help}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`facegate: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(`facegate: ${(e as Error).message}`);
  process.exitCode = 1;
}
