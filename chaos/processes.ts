/**
 * The processes of a chaos run, each a real child process with its output appended to a log file (scanned for
 * secrets at the end). A process can be killed at any moment and started again; one that exits when no fault asked
 * for it is started again too (and counted), as a process supervisor would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  /** Output that says the process is ready (it serves, or it polls its task queue), or a check that does. */
  ready: RegExp | (() => Promise<boolean>);
  readyTimeoutMs?: number;
}

export class ManagedProcess {
  private child?: ChildProcess;
  private log: WriteStream;
  private output = '';
  private exited?: Promise<void>;
  private intended = false;
  /** Exits no fault asked for (then restarted when `keepAlive`). */
  unplannedExits = 0;
  starts = 0;
  keepAlive = true;
  private restarting?: Promise<void>;

  constructor(readonly spec: ProcessSpec) {
    this.log = createWriteStream(spec.logFile, { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.intended = false;
    this.output = '';
    this.starts++;
    const { spec } = this;
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.log.write(`--- ${new Date().toISOString()} start #${this.starts} (pid ${child.pid})\n`);
    const collect = (chunk: Buffer) => {
      this.log.write(chunk);
      if (this.output.length < 200_000) this.output += chunk.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.log.write(`--- ${new Date().toISOString()} exit ${code ?? signal}\n`);
        resolve();
        if (!this.intended && this.keepAlive && this.child === child) {
          this.unplannedExits++;
          this.restarting = new Promise((r) => setTimeout(r, 1_000)).then(() => this.restart().catch(() => undefined));
        }
      }),
    );
    const deadline = Date.now() + (spec.readyTimeoutMs ?? 120_000);
    const ready = spec.ready;
    const isReady = () => (ready instanceof RegExp ? ready.test(this.output) : ready());
    while (!(await isReady())) {
      if (!this.running) throw new Error(`${spec.name} exited before it was ready:\n${this.output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${spec.name} not ready after ${spec.readyTimeoutMs ?? 120_000} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Starts again after a crash: a component that cannot reach Temporal yet (the server is being restarted) exits, and
   * is started again until it is ready, as a supervisor would.
   */
  async restart(attempts = 20): Promise<void> {
    for (let i = 1; ; i++) {
      try {
        await this.start();
        return;
      } catch (error) {
        if (this.running || i >= attempts) throw error;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  }

  /** Sends a signal the supervisor should not answer with a restart (SIGKILL for a crash, SIGSTOP for a freeze). */
  signal(signal: NodeJS.Signals): void {
    if (!this.child || !this.running) return;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.intended = true;
    this.child.kill(signal);
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    this.keepAlive = false;
    await this.restarting;
    if (!this.running) return;
    this.intended = true;
    this.child!.kill('SIGCONT');
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}
