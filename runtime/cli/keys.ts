// `facegate keys`: operator keys for signed remote commands (docs/security.md).
//   keys generate --out PREFIX                     PREFIX.key (private, 0600, keep it off the device) + PREFIX.pub
//   keys add PUBLIC.pem [--keys-file FILE]         install a public key on the device
//   keys remove KEYID [--keys-file FILE]           retire one
//   keys list [--keys-file FILE]                   the installed keys and their ids
//   keys sign --key PRIVATE.key --topic TOPIC [JSON]   the request body, signed, for mosquitto_pub
// The key file defaults to control.operatorKeysFile of the configuration (--config FILE, --board).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { addOperatorKey, parseKeyFile, removeOperatorKey } from '../control/operator-keys.ts';
import { signCommand } from '../control/signing.ts';
import { keyIdOf, writeSigningKeyPair } from '../util/signing.ts';

const USAGE =
  'usage: facegate keys generate --out PREFIX | add PUBLIC.pem | remove KEYID | list  [--keys-file FILE] [--config FILE] | sign --key PRIVATE.key --topic TOPIC [JSON]';

export async function keysCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'keys-file': { type: 'string' },
      config: { type: 'string' },
      board: { type: 'string' },
      key: { type: 'string' },
      topic: { type: 'string' },
    },
  });
  const [action, arg] = positionals;
  const keysFile = () => {
    const file =
      values['keys-file'] ??
      loadConfig({ file: values.config, board: values.board }).control.operatorKeysFile;
    if (!file) throw new Error('no key file: give --keys-file FILE or set control.operatorKeysFile');
    return file;
  };
  switch (action) {
    case 'generate': {
      if (!values.out) break;
      console.log(`key id ${writeSigningKeyPair(values.out)}`);
      console.log(`private key ${values.out}.key: keep it with the operator, never on a device`);
      console.log(`public key  ${values.out}.pub: install it on each device with`);
      console.log(
        `  facegate keys add ${values.out}.pub     (or provision.sh BOARD --operator-key ${values.out}.pub)`,
      );
      return 0;
    }
    case 'add': {
      if (!arg) break;
      const file = keysFile();
      let pem: string;
      try {
        pem = readFileSync(arg, 'utf8');
      } catch (e) {
        throw new Error(`cannot read ${arg}: ${(e as Error).message}`);
      }
      let result: { keyId: string; added: boolean };
      try {
        result = addOperatorKey(file, pem);
      } catch (e) {
        throw new Error(`${arg} ${(e as Error).message}`);
      }
      console.log(`${result.added ? 'installed' : 'already installed'}: key id ${result.keyId} in ${file}`);
      return 0;
    }
    case 'remove': {
      if (!arg) break;
      const file = keysFile();
      if (!removeOperatorKey(file, arg)) throw new Error(`no key with id ${arg} in ${file}`);
      console.log(`removed key id ${arg} from ${file}`);
      return 0;
    }
    case 'list': {
      const file = keysFile();
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        console.log(`${file}: no such file, no operator keys installed`);
        return 0;
      }
      const { keys, problems } = parseKeyFile(text);
      console.log(`${file}: ${keys.length} operator key(s)`);
      for (const key of keys) console.log(`  ${keyIdOf(key)}`);
      for (const problem of problems) console.log(`  ignored: ${problem}`);
      return 0;
    }
    case 'sign': {
      if (!values.key || !values.topic) break;
      const body = JSON.parse(arg ?? '{}') as object;
      const privateKey = readFileSync(values.key, 'utf8');
      console.log(JSON.stringify(signCommand(body, privateKey, keyIdOf(privateKey), values.topic)));
      return 0;
    }
  }
  console.error(USAGE);
  return 2;
}
