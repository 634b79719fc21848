import { readFileSync } from 'node:fs';
import path from 'node:path';
import { compileContracts } from '../../contracts/build';

it('rebuilds the committed contract artifacts byte for byte from contracts/src', () => {
  const artifacts = compileContracts();
  expect(Object.keys(artifacts).sort()).toEqual(['BridgeEscrow.json', 'BridgeMinter.json', 'SettleToken.json']);
  for (const [file, text] of Object.entries(artifacts)) {
    expect(readFileSync(path.resolve(__dirname, '../../contracts/artifacts', file), 'utf8')).toBe(text);
  }
}, 60_000);
