import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { clusterPorts } from '../../devnet/cluster/state';

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function stateDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'settle-ports-'));
  dirs.push(dir);
  return dir;
}

describe('the cluster’s ports', () => {
  it('keeps every Temporal port below 32768, where its membership table can hold it, and all of them distinct', async () => {
    const ports = await clusterPorts(stateDir());
    const { postgres, ...temporal } = ports;
    expect(Object.values(temporal).every((port) => port >= 10_000 && port < 32_768)).toBe(true);
    expect(postgres).toBeGreaterThan(0);
    expect(new Set(Object.values(ports)).size).toBe(Object.keys(ports).length);
  });

  it('finds the same ports after a restart, and replaces one that something else holds now', async () => {
    const dir = stateDir();
    const first = await clusterPorts(dir);
    expect(await clusterPorts(dir)).toEqual(first);

    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(first.history, '127.0.0.1', resolve));
    try {
      const again = await clusterPorts(dir);
      expect(again.history).not.toBe(first.history);
      expect({ ...again, history: 0 }).toEqual({ ...first, history: 0 });
      expect(JSON.parse(readFileSync(path.join(dir, 'ports.json'), 'utf8'))).toEqual(again);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('moves a Temporal port kept from before above 32767 back below it', async () => {
    const dir = stateDir();
    const first = await clusterPorts(dir);
    writeFileSync(path.join(dir, 'ports.json'), JSON.stringify({ ...first, matchingMembership: 40_000 }));
    const again = await clusterPorts(dir);
    expect(again.matchingMembership).toBeLessThan(32_768);
    expect({ ...again, matchingMembership: 0 }).toEqual({ ...first, matchingMembership: 0 });
  });
});
