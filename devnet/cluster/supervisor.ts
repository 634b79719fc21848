/**
 * Runs the topology's processes as a service manager would: each in its own process group with its output in
 * `<logDir>/<name>.log`; started in order, each waited for until it serves; restarted with a growing delay when it
 * exits on its own once the cluster is up; stopped in reverse order (a polite signal, then SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface ComponentSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Whether it serves yet, given its output so far; polled until true. */
  ready: (output: string) => boolean | Promise<boolean>;
  readyTimeoutMs?: number;
  /** The signal that stops it cleanly (default SIGTERM), and how long it may take before SIGKILL. */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
}

export interface ComponentState {
  pid: number | undefined;
  restarts: number;
  log: string;
}

interface Running {
  spec: ComponentSpec;
  child: ChildProcess;
  exited: Promise<void>;
  output: string;
  startedAt: number;
  restarts: number;
  log: WriteStream;
  restartTimer?: NodeJS.Timeout;
}

export class ComponentStartError extends Error {
  override name = 'ComponentStartError';
}

const OUTPUT_KEPT = 64_000;

export class Supervisor {
  private readonly components: Running[] = [];
  private stopping = false;
  private up = false;

  constructor(
    private readonly logDir: string,
    private readonly report: (line: string) => void,
    options: {
      /** Called after every (re)start, so a caller can publish the pids. */
      changed?: () => void;
      /** A component that exits while the cluster is still starting: the start has failed. */
      failed?: (error: Error) => void;
    } = {},
  ) {
    mkdirSync(logDir, { recursive: true });
    this.changed = options.changed ?? (() => undefined);
    this.failed = options.failed ?? (() => undefined);
  }

  private readonly changed: () => void;
  private readonly failed: (error: Error) => void;

  /** Everything is started: from now on a component that exits is restarted. */
  markUp(): void {
    this.up = true;
  }

  /** Starts a component and resolves once it is ready; rejects (with its last output) if it exits first. */
  async start(spec: ComponentSpec): Promise<void> {
    if (this.stopping) throw new ComponentStartError(`${spec.name}: not started, the cluster is stopping`);
    const log = createWriteStream(path.join(this.logDir, `${spec.name}.log`), { flags: 'a' });
    const running = { spec, log, restarts: 0 } as Running;
    this.components.push(running);
    this.spawn(running);
    const deadline = Date.now() + (spec.readyTimeoutMs ?? 120_000);
    for (;;) {
      if (running.child.exitCode !== null || running.child.signalCode !== null) {
        throw new ComponentStartError(
          `${spec.name} exited (${running.child.exitCode ?? running.child.signalCode}) before it was ready; ` +
            `its last output:\n${running.output.slice(-3000)}`,
        );
      }
      if (await spec.ready(running.output)) return;
      if (Date.now() > deadline) {
        throw new ComponentStartError(
          `${spec.name} was not ready after ${spec.readyTimeoutMs ?? 120_000} ms; its last output:\n${running.output.slice(-3000)}`,
        );
      }
      await sleep(200);
    }
  }

  state(): Record<string, ComponentState> {
    return Object.fromEntries(
      this.components.map((c) => [
        c.spec.name,
        { pid: c.child.pid, restarts: c.restarts, log: path.join(this.logDir, `${c.spec.name}.log`) },
      ]),
    );
  }

  /** A component's recent output (stdout and stderr, since its last start). */
  output(name: string): string {
    return this.components.find((c) => c.spec.name === name)?.output ?? '';
  }

  /** Stops every component, the last started first. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const component of [...this.components].reverse()) {
      clearTimeout(component.restartTimer);
      await stopChild(component);
      await new Promise<void>((resolve) => component.log.end(resolve));
    }
  }

  private spawn(running: Running): void {
    const { spec } = running;
    const child = spawn(spec.command, spec.args, {
      env: spec.env ?? process.env,
      cwd: spec.cwd,
      ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
      ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C reaches the cluster runner only, which stops everything in order.
      detached: true,
    });
    running.child = child;
    running.output = '';
    running.startedAt = Date.now();
    const onData = (chunk: Buffer) => {
      running.log.write(chunk);
      running.output = (running.output + chunk.toString()).slice(-OUTPUT_KEPT);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (error) => onData(Buffer.from(`spawn error: ${error.message}\n`)));
    running.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => this.exited(running, child, code, signal));
    this.changed();
  }

  /** A component that stops on its own is restarted: after 1 s, doubling up to 30 s while it keeps failing fast. */
  private exited(running: Running, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || running.child !== child) return;
    if (!this.up) {
      this.failed(
        new ComponentStartError(
          `${running.spec.name} exited (${code ?? signal}) while the cluster was starting; its last output:\n` +
            running.output.slice(-3000),
        ),
      );
      return;
    }
    const ranFor = Date.now() - running.startedAt;
    const delay = ranFor > 60_000 ? 1_000 : Math.min(30_000, 1_000 * 2 ** Math.min(running.restarts, 5));
    this.report(
      `settle cluster: ${running.spec.name} (pid ${child.pid}) exited (${code ?? signal}); restarting in ${delay / 1000} s`,
    );
    running.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      running.restarts += 1;
      this.spawn(running);
      this.report(`settle cluster: ${running.spec.name} restarted (pid ${running.child.pid})`);
    }, delay);
  }
}

async function stopChild(component: Running): Promise<void> {
  const { child, spec } = component;
  if (child.exitCode !== null || child.signalCode !== null) return;
  signalGroup(child, spec.stopSignal ?? 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), spec.stopTimeoutMs ?? 15_000);
  await component.exited;
  clearTimeout(timer);
}

/** Signals the child's whole process group (tsx runs the entry point in a grandchild). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** A port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Whether a port can be bound on 127.0.0.1 right now. */
export async function portFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
