// workerd's CPU time, read from /proc: the processes Miniflare started for this script, their
// threads' CPU (schedstat, ns), and a meter that samples the busiest thread over a measured window.
// Linux only (the benches run on Debian). Used by cpu.mjs (per invocation) and many-jobs.mjs (what
// bounds the run on this machine).
import fs from 'node:fs';

/** The pids of the workerd processes started by this process (Miniflare's runtime), oldest first. */
export function workerdPids() {
  const parents = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      parents.set(Number(d), { ppid: Number(fields[1]), comm, start: Number(fields[19]) });
    } catch {}
  }
  const descends = (pid) => {
    for (let p = pid, n = 0; p > 1 && n < 20; n++) {
      if (p === process.pid) return true;
      p = parents.get(p)?.ppid ?? 0;
    }
    return false;
  };
  return [...parents].filter(([pid, v]) => v.comm === 'workerd' && descends(pid)).sort((a, b) => a[1].start - b[1].start || a[0] - b[0]).map(([pid]) => pid);
}

/** CPU time (ns) of every thread of `pids`: Map "pid/tid" → ns. */
export function threadCpu(pids) {
  const out = new Map();
  for (const pid of pids) {
    let tids = [];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        out.set(`${pid}/${tid}`, Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
      } catch {}
    }
  }
  return out;
}

export const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);

/**
 * Samples every workerd thread's CPU each `everyMs` from `start()` to `stop()`. `stop()` returns
 * {wall_ms, workerd_ms (all threads), threads (how many ran), busiest: {cpu_ms, share (of the
 * wall)}, samples, busy_samples (samples in which the busiest thread ran ≥ `busyShare` of the
 * time)}: whether one thread, not the cores, bounds what ran in the window.
 */
export function threadMeter({ everyMs = 250, busyShare = 0.9 } = {}) {
  const pids = workerdPids();
  const samples = [];
  let timer = null;
  const take = () => samples.push({ at: performance.now(), cpu: threadCpu(pids) });
  return {
    start() {
      take();
      timer = setInterval(take, everyMs);
    },
    stop() {
      clearInterval(timer);
      take();
      const first = samples[0];
      const last = samples.at(-1);
      const used = (a, b, id) => ((b.cpu.get(id) ?? 0) - (a.cpu.get(id) ?? b.cpu.get(id) ?? 0)) / 1e6;
      const ids = [...last.cpu.keys()];
      const perThread = ids.map((id) => ({ id, cpu_ms: used(first, last, id) })).sort((a, b) => b.cpu_ms - a.cpu_ms);
      const busiest = perThread[0] ?? { id: null, cpu_ms: 0 };
      const wallMs = last.at - first.at;
      let busy = 0;
      for (let k = 1; k < samples.length; k++) {
        const span = samples[k].at - samples[k - 1].at;
        if (span > 0 && used(samples[k - 1], samples[k], busiest.id) >= busyShare * span) busy++;
      }
      return {
        wall_ms: wallMs,
        workerd_ms: perThread.reduce((a, t) => a + t.cpu_ms, 0),
        threads: perThread.filter((t) => t.cpu_ms > 1).length,
        busiest: { cpu_ms: busiest.cpu_ms, share: wallMs > 0 ? busiest.cpu_ms / wallMs : 0 },
        second_ms: perThread[1]?.cpu_ms ?? 0,
        sample_ms: everyMs,
        samples: samples.length - 1,
        busy_samples: busy,
        busy_share: busyShare,
      };
    },
  };
}
