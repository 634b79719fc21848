/**
 * `npm run contracts:build`: compiles contracts/src with the solc npm package (0.8.28, offline) into
 * contracts/artifacts/<Name>.json (ABI + bytecode). Deterministic: the same sources give byte-identical artifacts,
 * and `npm run contracts:build -- --check` fails when the committed artifacts are stale.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(__dirname, 'src');
const OUT = path.resolve(__dirname, 'artifacts');
export const SOLC_VERSION = '0.8.28';

export interface ContractArtifact {
  contractName: string;
  sourceName: string;
  compiler: string;
  abi: unknown[];
  bytecode: `0x${string}`;
}

interface SolcOutput {
  errors?: { severity: string; formattedMessage: string }[];
  contracts: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>;
}

/** Compiles every contract in contracts/src; returns the artifacts as file name → JSON text. */
export function compileContracts(): Record<string, string> {
  const solc = require('solc') as { version(): string; compile(input: string): string };
  if (!solc.version().startsWith(SOLC_VERSION)) {
    throw new Error(`solc ${solc.version()} installed; contracts are built with ${SOLC_VERSION}`);
  }
  const sources = Object.fromEntries(
    readdirSync(SRC)
      .filter((file) => file.endsWith('.sol'))
      .sort()
      .map((file) => [file, { content: readFileSync(path.join(SRC, file), 'utf8') }]),
  );
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      // No metadata hash: the bytecode must not depend on where the sources were compiled.
      metadata: { bytecodeHash: 'none', appendCBOR: false },
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  const artifacts: Record<string, string> = {};
  for (const [sourceName, contracts] of Object.entries(output.contracts)) {
    for (const [contractName, compiled] of Object.entries(contracts)) {
      if (!compiled.evm.bytecode.object) continue; // interfaces
      const artifact: ContractArtifact = {
        contractName,
        sourceName,
        compiler: `solc-${solc.version()}`,
        abi: compiled.abi,
        bytecode: `0x${compiled.evm.bytecode.object}`,
      };
      artifacts[`${contractName}.json`] = `${JSON.stringify(artifact, null, 2)}\n`;
    }
  }
  return artifacts;
}

if (require.main === module) {
  const check = process.argv.includes('--check');
  const artifacts = compileContracts();
  mkdirSync(OUT, { recursive: true });
  let stale = 0;
  for (const [file, text] of Object.entries(artifacts)) {
    const target = path.join(OUT, file);
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing: stale
    }
    if (current === text) continue;
    stale++;
    if (check) process.stderr.write(`contracts: ${file} is stale; run npm run contracts:build\n`);
    else writeFileSync(target, text);
  }
  process.stdout.write(
    `contracts: ${Object.keys(artifacts).length} artifacts, ${stale} ${check ? 'stale' : 'written'}\n`,
  );
  process.exit(check && stale > 0 ? 1 : 0);
}
