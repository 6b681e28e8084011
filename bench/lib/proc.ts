// What the kernel knows about the processes under test, read from /proc (Linux only): the
// process tree, resident memory, CPU time per process and per thread, listening ports, fd limits.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ; 100 on every Linux this runs on.
const PAGE = 4096;

interface StatLine {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime, in seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

/** Parses /proc/PID/stat (or /proc/PID/task/TID/stat); undefined when the process is gone. */
function readStat(path: string): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  // comm is in parentheses and may hold spaces or ')': split at the last ')'.
  const close = text.lastIndexOf(")");
  const pid = Number(text.slice(0, text.indexOf(" ")));
  const comm = text.slice(text.indexOf("(") + 1, close);
  const fields = text.slice(close + 2).split(" ");
  // fields[0] is field 3 (state): field N is fields[N - 3].
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { pid, comm, ppid, cpuSeconds: (utime + stime) / TICKS_PER_SECOND, rssBytes: rssPages * PAGE };
}

function allPids(): number[] {
  return readdirSync("/proc")
    .filter((name) => /^[0-9]+$/.test(name))
    .map(Number);
}

/** `root` and every descendant still alive. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const stat = readStat(`/proc/${pid}/stat`);
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(pid);
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (!readStat(`/proc/${pid}/stat`)) continue;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

export interface ProcessInfo {
  pid: number;
  comm: string;
  rssBytes: number;
  cpuSeconds: number;
  cmdline: string;
}

export function processInfo(pid: number): ProcessInfo | undefined {
  const stat = readStat(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  let cmdline = "";
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    // Gone meanwhile.
  }
  return { pid, comm: stat.comm, rssBytes: stat.rssBytes, cpuSeconds: stat.cpuSeconds, cmdline };
}

/** CPU seconds of every thread of `pid`, by thread id. */
export function threadCpu(pid: number): Map<number, { name: string; cpuSeconds: number }> {
  const out = new Map<number, { name: string; cpuSeconds: number }>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const stat = readStat(`/proc/${pid}/task/${tid}/stat`);
    if (stat) out.set(Number(tid), { name: stat.comm, cpuSeconds: stat.cpuSeconds });
  }
  return out;
}

/** TCP ports `pid` listens on (IPv4 and IPv6), from its socket fds and its net namespace's tables. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const match = /^socket:\[(\d+)\]$/.exec(target);
        if (match?.[1]) inodes.add(match[1]);
      } catch {
        // fd closed meanwhile.
      }
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      const state = cols[3];
      const inode = cols[9];
      if (!local || state !== "0A" || !inode || !inodes.has(inode)) continue;
      ports.push(parseInt(local.slice(local.lastIndexOf(":") + 1), 16));
    }
  }
  return [...new Set(ports)];
}

/** Open file descriptors of `pid`. */
export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** The soft and hard "Max open files" of a process. */
export function openFilesLimit(pid: number | "self" = "self"): { soft: number; hard: number } {
  const text = readFileSync(`/proc/${pid}/limits`, "utf8");
  const line = text.split("\n").find((l) => l.startsWith("Max open files")) ?? "";
  const [soft, hard] = line.replace("Max open files", "").trim().split(/\s+/);
  const num = (v: string | undefined): number => (v === "unlimited" ? Number.POSITIVE_INFINITY : Number(v));
  return { soft: num(soft), hard: num(hard) };
}

export function memTotalBytes(): number {
  const line =
    readFileSync("/proc/meminfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("MemTotal:")) ?? "";
  return Number(line.replace(/\D+/g, "")) * 1024;
}

export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** A CPU-time snapshot of some processes and of their threads. */
export interface CpuSnapshot {
  at: number;
  processes: Map<number, { comm: string; cpuSeconds: number }>;
  threads: Map<string, { pid: number; name: string; cpuSeconds: number }>;
}

export function cpuSnapshot(pids: number[]): CpuSnapshot {
  const processes = new Map<number, { comm: string; cpuSeconds: number }>();
  const threads = new Map<string, { pid: number; name: string; cpuSeconds: number }>();
  for (const pid of pids) {
    const info = readStat(`/proc/${pid}/stat`);
    if (!info) continue;
    processes.set(pid, { comm: info.comm, cpuSeconds: info.cpuSeconds });
    for (const [tid, t] of threadCpu(pid)) threads.set(`${pid}/${tid}`, { pid, name: t.name, cpuSeconds: t.cpuSeconds });
  }
  return { at: performance.now(), processes, threads };
}

export interface CpuUse {
  /** Per process, % of one core over the window. */
  processes: Array<{ pid: number; comm: string; percent: number }>;
  /** The busiest thread over the window, % of one core: a room is one workerd thread. */
  hottestThread: { pid: number; name: string; percent: number } | null;
  /** All server processes together, % of one core. */
  totalPercent: number;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const seconds = Math.max(1e-3, (b.at - a.at) / 1000);
  const processes: CpuUse["processes"] = [];
  let total = 0;
  for (const [pid, end] of b.processes) {
    const start = a.processes.get(pid)?.cpuSeconds ?? 0;
    const percent = ((end.cpuSeconds - start) / seconds) * 100;
    total += percent;
    processes.push({ pid, comm: end.comm, percent: round1(percent) });
  }
  let hottest: CpuUse["hottestThread"] = null;
  for (const [key, end] of b.threads) {
    const start = a.threads.get(key)?.cpuSeconds ?? 0;
    const percent = ((end.cpuSeconds - start) / seconds) * 100;
    if (!hottest || percent > hottest.percent) hottest = { pid: end.pid, name: end.name, percent: round1(percent) };
  }
  return { processes, hottestThread: hottest, totalPercent: round1(total) };
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * Samples the resident memory of a process tree every `intervalMs` and keeps the peaks: of the
 * whole tree and of each process.
 */
export class RssSampler {
  readonly #root: number;
  readonly #timer: ReturnType<typeof setInterval>;
  peakTreeBytes = 0;
  readonly peakByPid = new Map<number, { comm: string; bytes: number }>();

  constructor(root: number, intervalMs = 200) {
    this.#root = root;
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  sample(): number {
    let sum = 0;
    for (const pid of processTree(this.#root)) {
      const stat = readStat(`/proc/${pid}/stat`);
      if (!stat) continue;
      sum += stat.rssBytes;
      const peak = this.peakByPid.get(pid);
      if (!peak || stat.rssBytes > peak.bytes) this.peakByPid.set(pid, { comm: stat.comm, bytes: stat.rssBytes });
    }
    if (sum > this.peakTreeBytes) this.peakTreeBytes = sum;
    return sum;
  }

  /** Forgets the peaks so far (a new measurement starts). */
  reset(): void {
    this.peakTreeBytes = 0;
    this.peakByPid.clear();
    this.sample();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Resident bytes of one process right now (0 when gone). */
export function rssOf(pid: number): number {
  return readStat(`/proc/${pid}/stat`)?.rssBytes ?? 0;
}

/**
 * Microseconds some task on this machine waited for a CPU (pressure stall information), or
 * undefined where the kernel has no PSI. The share of a window spent stalled says how contended
 * the machine was while a measurement ran.
 */
export function cpuStallMicros(): number | undefined {
  try {
    const some = readFileSync("/proc/pressure/cpu", "utf8")
      .split("\n")
      .find((l) => l.startsWith("some"));
    const total = /total=(\d+)/.exec(some ?? "")?.[1];
    return total === undefined ? undefined : Number(total);
  } catch {
    return undefined;
  }
}
