#!/usr/bin/env python3
"""bench/run.sh's raw results -> OUT/bench.md, OUT/bench.png, README's block.

usage: report.py RAW META OUT [README]

RAW has one tab-separated line per run:
  T  measurement layout size rep Mpps|nan        a throughput reading
  L  path layout size rep median_ns p99_ns count timeouts
  M  config peer arena_bytes rss_kb hwm_kb shmem_kb peer_hwm_kb verified
  B  rep ns                                       a cache line's round trip
META has key=value lines (machine, date, settings). Every point is the
median of its runs; a ratio is the ratio of two medians.
"""
import math
import os
import statistics
import subprocess
import shutil
import sys
import tempfile

NAN = float("nan")

# Each comparison: id, vuser side, its measurement, peer, peer measurement,
# who reads both rates, target ratio at 64 bytes (None: none set).
PAIRS = [
    ("1", "vuser port txonly -> DPDK vhost rxonly", "M1",
     "DPDK virtio_user txonly -> DPDK vhost rxonly", "M2rx", "DPDK vhost Rx-pps", 1.3),
    ("2", "DPDK vhost txonly -> vuser port rxonly", "M3",
     "DPDK vhost txonly -> DPDK virtio_user rxonly", "M4vh", "DPDK vhost Tx-pps", 1.3),
    ("3", "DPDK virtio_user txonly -> vuser vhost rxonly", "M5",
     "DPDK virtio_user txonly -> DPDK vhost rxonly", "M2tx", "DPDK virtio_user Tx-pps", 1.3),
    ("3b", "vuser vhost txonly -> DPDK virtio_user rxonly", "M6",
     "DPDK vhost txonly -> DPDK virtio_user rxonly", "M4vu", "DPDK virtio_user Rx-pps", None),
    ("4a", "vuser port txonly -> vuser vhost rxonly", "M7",
     "DPDK virtio_user txonly -> DPDK vhost rxonly", "M2tx", "each sender", 1.5),
    ("4a", "vuser port txonly -> vuser vhost rxonly", "M7",
     "memif client txonly -> memif server rxonly", "M9", "each sender", 1.3),
    ("4b", "vuser vhost txonly -> vuser port rxonly", "M8",
     "DPDK vhost txonly -> DPDK virtio_user rxonly", "M4vh", "each sender", 1.5),
    ("4b", "vuser vhost txonly -> vuser port rxonly", "M8",
     "memif server txonly -> memif client rxonly", "M10", "each sender", 1.3),
]
# Measurements that need vuser's vhost device to speak the layout.
NEEDS_VHOST = {"M5", "M6", "M7", "M8"}
# Reference lines on the plot: the DPDK pair and the memif pair, each way.
REFS = [("DPDK virtio_user -> DPDK vhost", "M2tx"), ("DPDK vhost -> DPDK virtio_user", "M4vh"),
        ("memif client -> server", "M9"), ("memif server -> client", "M10")]
LAT_TARGET = 0.8
KEEP_MARK = "<!-- bench/run.sh keeps everything below this line -->"
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def median(vals):
    vals = [v for v in vals if not math.isnan(v)]
    return statistics.median(vals) if vals else NAN


def fmt(v, digits=2):
    return "n/a" if math.isnan(v) else "%.*f" % (digits, v)


def ratio(a, b):
    return a / b if not (math.isnan(a) or math.isnan(b)) and b > 0 else NAN


def load(raw):
    tput, lat, mem, bounce, drift = {}, {}, [], [], []
    for line in open(raw):
        f = line.rstrip("\n").split("\t")
        if f[0] == "T":
            tput.setdefault((f[1], f[2], int(f[3])), []).append(float(f[5]))
        elif f[0] == "L":
            lat.setdefault((f[1], f[2], int(f[3])), []).append((float(f[5]), float(f[6])))
        elif f[0] == "M":
            mem.append(f[1:])
        elif f[0] == "B":
            bounce.append(float(f[2]))
        elif f[0] == "P":
            drift.append(float(f[4]))
    return tput, lat, mem, bounce, drift


class Bench:
    def __init__(self, raw, meta):
        self.meta = meta
        self.tput, self.lat, self.mem, self.bounce, self.drift = load(raw)
        self.sizes = [int(s) for s in meta["sizes"].split()]
        self.layouts = meta["layouts"].split()
        self.vhost_packed = meta.get("vhost_packed") == "1"

    def value(self, meas, layout, size):
        # memif has one layout: its runs are filed under "any".
        vals = self.tput.get((meas, layout, size)) or self.tput.get((meas, "any", size), [])
        return median(vals)

    def why_na(self, meas, layout):
        if meas in NEEDS_VHOST and layout == "packed" and not self.vhost_packed:
            return "n/a: vuser vhost offers no packed rings yet"
        return "n/a"

    def cell(self, meas, layout, size, digits=2):
        v = self.value(meas, layout, size)
        return self.why_na(meas, layout) if math.isnan(v) else fmt(v, digits)

    # ------------------------------------------------------------ tables
    def summary_table(self, size):
        head = "| pair | vuser | against | target |"
        rule = "|------|-------|---------|-------:|"
        for lay in self.layouts:
            head += " %s: vuser / peer Mpps | %s ratio |" % (lay, lay)
            rule += "------:|------:|"
        rows = [head, rule]
        for pid, vside, vm, peer, pm, _, target in PAIRS:
            row = "| %s | %s | %s | %s |" % (pid, vside, peer, ">= %.1fx" % target if target else "-")
            for lay in self.layouts:
                v, p = self.value(vm, lay, size), self.value(pm, lay, size)
                r = ratio(v, p)
                if math.isnan(v):
                    row += " %s | n/a |" % self.why_na(vm, lay)
                    continue
                mark = ""
                if target and not math.isnan(r):
                    mark = " (met)" if r >= target else " (not met)"
                row += " %s / %s | %s%s |" % (fmt(v), fmt(p), fmt(r), mark)
            rows.append(row)
        return "\n".join(rows)

    def full_table(self):
        rows = ["| pair | layout | bytes | vuser Mpps | peer | peer Mpps | ratio |",
                "|------|--------|------:|-----------:|------|----------:|------:|"]
        for pid, vside, vm, peer, pm, _, _ in PAIRS:
            for lay in self.layouts:
                for size in self.sizes:
                    v, p = self.value(vm, lay, size), self.value(pm, lay, size)
                    rows.append("| %s %s | %s | %d | %s | %s | %s | %s |" % (
                        pid, vside, lay, size, self.cell(vm, lay, size), peer,
                        self.cell(pm, lay, size), fmt(ratio(v, p))))
        return "\n".join(rows)

    def lat_value(self, path, layout, size):
        runs = self.lat.get((path, layout, size), [])
        return median([m for m, _ in runs]), median([p for _, p in runs])

    def latency_table(self):
        rows = ["| path (one frame in flight) | layout | bytes | median us | p99 us | median vs DPDK vhost (target <= %.1fx) |" % LAT_TARGET,
                "|------------------------------|--------|------:|----------:|-------:|------:|"]
        sizes = sorted({k[2] for k in self.lat})
        for lay in self.layouts:
            for size in sizes:
                dm, dp = self.lat_value("Ld", lay, size)
                vm, vp = self.lat_value("Lv", lay, size)
                r = ratio(vm, dm)
                mark = "" if math.isnan(r) else (" (met)" if r <= LAT_TARGET else " (not met)")
                na = "n/a: vuser vhost offers no packed rings yet" if (
                    lay == "packed" and not self.vhost_packed) else "n/a"
                rows.append("| vuser port <-> vuser vhost macswap | %s | %d | %s | %s | %s%s |" % (
                    lay, size, na if math.isnan(vm) else fmt(vm / 1e3, 2),
                    na if math.isnan(vp) else fmt(vp / 1e3, 2), fmt(r), mark))
                rows.append("| vuser port <-> DPDK vhost macswap | %s | %d | %s | %s | 1.00 |" % (
                    lay, size, fmt(dm / 1e3, 2), fmt(dp / 1e3, 2)))
        return "\n".join(rows)

    def latency_scale(self):
        b = median(self.bounce)
        if math.isnan(b):
            return "The cache line round trip between the two cores was not measured."
        line = ("For scale: one cache line written on core 0, read on core 1 and answered the same "
                "way takes %.0f ns here (`bench/linebounce.c`, median of %d runs). Every round trip "
                "above is built of such transfers: each way, the polling side sees an index or "
                "descriptor the other side wrote, then reads the frame it covers." % (b, len(self.bounce)))
        parts = []
        for lay in self.layouts:
            dm = self.lat_value("Ld", lay, 64)[0]
            vm = self.lat_value("Lv", lay, 64)[0]
            if not (math.isnan(dm) or math.isnan(vm)):
                parts.append("%s, vuser vhost %.1f and DPDK vhost %.1f" % (lay, vm / b, dm / b))
        if parts:
            line += " At 64 bytes the medians are, in these round trips: %s." % "; ".join(parts)
        return line

    def memory_table(self):
        rows = ["| port devargs | peer | arena MiB | port VmHWM MiB | port RssShmem MiB | port VmRSS MiB | peer process VmHWM MiB | frames echoed |",
                "|--------------|------|----------:|---------------:|------------------:|---------------:|-----------------------:|--------------:|"]
        names = {"defaults": "path=... (defaults: 1 queue pair, 256 descriptors)",
                 "q8": "path=...,queues=8,queue_size=1024"}
        peers = {"vuser": "vuser vhost (vuser-pmd --vhost)", "dpdk": "DPDK vhost (testpmd)"}

        def mib(kb, scale=1024.0):
            try:
                return "%.1f" % (float(kb) / scale)
            except ValueError:
                return "n/a"
        for cfg, peer, arena, rss, hwm, shmem, peer_hwm, verified in self.mem:
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                names.get(cfg, cfg), peers.get(peer, peer), mib(arena, 1048576.0), mib(hwm),
                mib(shmem), mib(rss), mib(peer_hwm), verified))
        return "\n".join(rows)

    # -------------------------------------------------------------- text
    def machine(self):
        m = self.meta
        virt = " (%s guest)" % m["virt"] if m.get("virt") else ""
        return ("%s, %s cores%s, %s, Linux %s, %s; DPDK %s from Debian; vuser %s" % (
            m["cpu"], m["cores"], virt, m["mem"], m["kernel"], m["os"], m["dpdk"], m["commit"]))

    def settings(self):
        m = self.meta
        return ("%s run(s) per point, median shown; %s s measured after %s s of warm-up per run; "
                "ping-pong %s s per run; memory after %s echoed frames. Load average "
                "(1/5/15 min) %s at the start, %s at the end; the run took %d min %d s." % (
                    m["repeat"], m["seconds"], m["warmup"], m["lat_seconds"], m["mem_count"],
                    m["load_start"], m["load_end"], int(m["runtime"]) // 60, int(m["runtime"]) % 60)
                + self.drift_note())

    def drift_readings(self):
        return sorted(v for v in self.drift if not math.isnan(v))

    def drift_short(self):
        d = self.drift_readings()
        if not d:
            return ""
        return (" A cache line's round trip between the two cores took %.0f-%.0f ns during the "
                "run (median %.0f); every rate depends on it." % (d[0], d[-1], median(d)))

    def drift_note(self):
        d = self.drift_readings()
        if not d:
            return ""
        return (" A cache line's round trip between the two cores (`bench/linebounce.c`), read "
                "before each throughput run, took %.0f ns at least, %.0f ns at the median and "
                "%.0f ns at most over %d readings: the host decides where the two vCPUs run, and "
                "every rate here is built of such transfers, so compare rates taken at similar "
                "readings (the two sides of a ratio are measured within seconds of each other)."
                % (d[0], median(d), d[-1], len(d)))

    def headline_size(self):
        return 64 if 64 in self.sizes else self.sizes[0]

    def markdown(self, plot):
        m = self.meta
        size = self.headline_size()
        out = ["# vuser benchmark", ""]
        if m.get("quick") == "1":
            out += ["> **Quick smoke run** (`--quick`): one size, one run per point, short",
                    "> points. It shows that every path works, not how fast it is.", ""]
        out += ["- Date: %s" % m["date"],
                "- Command: `%s`" % m["command"],
                "- Machine: %s" % self.machine(),
                "- Settings: %s" % self.settings(),
                "- Packed rings on vuser's vhost device: %s" % (
                    "offered" if self.vhost_packed else "not offered yet (its packed rows say n/a)"),
                "",
                "## %d-byte frames, one queue: vuser against DPDK" % size, "",
                "Ratio = vuser Mpps / peer Mpps (higher is better for vuser); targets from issue 6.", "",
                self.summary_table(size), ""]
        if plot:
            out += ["![frames per second against frame size](%s)" % os.path.basename(plot), ""]
        out += ["## Latency", "", self.latency_table(), "", self.latency_scale(), "",
                "## Memory", "", self.memory_table(), "",
                "## Every size", "", self.full_table(), "", HOW, "", KEEP_MARK]
        return "\n".join(out) + "\n"

    def readme_block(self, md_rel, plot_rel):
        m = self.meta
        size = self.headline_size()
        out = [README_BEGIN,
               "Latest run: %s, `%s`, on %s.%s Full tables, every size and how each rate is read: "
               "[%s](%s)." % (m["date"], m["command"], self.machine(), self.drift_short(), md_rel,
                              md_rel), "",
               "%d-byte frames, one queue (ratio = vuser / peer):" % size, "",
               self.summary_table(size), ""]
        if plot_rel:
            out += ["![frames per second against frame size](%s)" % plot_rel, ""]
        out += ["Round trip, one frame in flight:", "", self.latency_table(), "",
                "Memory of one port:", "", self.memory_table(), README_END]
        return "\n".join(out)

    # -------------------------------------------------------------- plot
    def plot(self, path):
        gp = shutil.which("gnuplot")
        if not gp:
            return None
        tmp = tempfile.mkdtemp(prefix="vuser-plot.")
        series = [("%s %s" % (pid, vside.replace(" txonly", "").replace(" rxonly", "")), vm)
                  for pid, vside, vm, *_ in PAIRS]
        # 4a and 4b appear twice in PAIRS (two peers): one line each.
        seen, vlines = set(), []
        for name, meas in series:
            if meas not in seen:
                seen.add(meas)
                vlines.append((name, meas))
        cols = vlines + REFS
        panels = []
        for lay in self.layouts:
            data = os.path.join(tmp, "%s.tsv" % lay)
            with open(data, "w") as f:
                f.write("size\t" + "\t".join('"%s"' % n for n, _ in cols) + "\n")
                for size in self.sizes:
                    vals = [self.value(meas, lay, size) for _, meas in cols]
                    f.write("%d\t" % size + "\t".join("NaN" if math.isnan(v) else "%.3f" % v
                                                      for v in vals) + "\n")
            panels.append((lay, data))
        colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
        script = [
            'set terminal pngcairo size %d,560 font ",9"' % (620 * len(panels) + 40),
            'set output "%s"' % path,
            'set termoption noenhanced',
            'set datafile separator "\\t"',
            'set datafile missing "NaN"',
            'set logscale x 2',
            'set xtics (%s)' % ", ".join(str(s) for s in self.sizes),
            'set xlabel "frame size (bytes)"',
            'set ylabel "million frames per second"',
            'set yrange [0:*]',
            'set grid',
            'set key outside bottom center maxrows 5 font ",8"',
            'set multiplot layout 1,%d title "vuser vs DPDK 22.11, one queue, %s (%s)"' % (
                len(panels), self.meta["date"], self.meta["cpu"].replace('"', "")),
        ]
        for lay, data in panels:
            plots = []
            for i, (name, _) in enumerate(cols):
                if i < len(vlines):
                    style = 'lw 2 pt 7 ps 0.6 lc rgb "%s"' % colors[i % len(colors)]
                else:
                    j = i - len(vlines)
                    style = 'lw 1.5 dt %d pt 6 ps 0.6 lc rgb "%s"' % (2 + j % 2, "#555555" if j < 2 else "#aaaaaa")
                plots.append('"%s" using 1:%d with linespoints %s title columnheader(%d)' % (
                    data, i + 2, style, i + 2))
            script.append('set title "%s rings"' % lay)
            script.append("plot " + ", \\\n     ".join(plots))
        script.append("unset multiplot")
        gpfile = os.path.join(tmp, "plot.gp")
        with open(gpfile, "w") as f:
            f.write("\n".join(script) + "\n")
        res = subprocess.run([gp, gpfile], capture_output=True, text=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if res.returncode != 0:
            sys.stderr.write("gnuplot failed:\n" + res.stderr)
            return None
        return path


HOW = """## How

- One queue pair; every busy-polling side on its own core:
  frontends (vuser port, DPDK virtio_user, memif client) on core 0, backends
  (vuser vhost, DPDK vhost, memif server) on core 1. DPDK is testpmd from Debian
  (`--no-huge -m 1024`, default mbuf pool), driven at its prompt.
- The vuser port's devargs: `path=...,queues=1,notify=0,packed_vq=0|1`. Every
  backend it meets here polls (DPDK's vhost and vuser's), so it runs as a
  program facing one would: no kick eventfd, and no kick check, whose full
  fence is a wait per burst. DPDK's virtio_user has no such setting; it checks,
  and the backends never ask for a kick.
- Frames: vuser-pmd's txonly writes every byte of a UDP/IPv4 frame into every
  buffer. testpmd's txonly writes only the 42 bytes of Ethernet, IPv4 and UDP
  headers and leaves the payload as the buffer held it, which favours DPDK's
  senders more as frames grow (at 64 bytes both write one cache line). Both
  rxonly receivers count and free every frame without reading its payload; a
  vhost device copies every frame out of the frontend's memory whatever its
  mode.
- Who reads each rate, so that both sides of a comparison have the same reader:
  pair 1 the DPDK vhost's Rx-pps; pair 2 the DPDK vhost's Tx-pps; pair 3 DPDK
  virtio_user's Tx-pps; pair 3b DPDK virtio_user's Rx-pps; pair 4 each sender's
  own count (vuser-pmd's JSON `tx_pps` after `--warmup`, testpmd's Tx-pps).
  testpmd's rates come from two `show port stats 0` around the measured window
  (timed by testpmd with its TSC), vuser-pmd's from its own clock.
- Latency: `vuser-pmd --mode pingpong` sends one frame, busy-polls for the reply
  (the peer swaps MACs), checks its sequence number, length and checksum, and
  keeps every round-trip time (CLOCK_MONOTONIC, ns). The table shows the median
  over runs of each run's median and 99th percentile. Round trips are those of
  a busy-polling pair: no kicks, no interrupts.
- Memory: the port's figures are vuser-pmd's own process (VmHWM: its peak
  resident memory; RssShmem: the shared arena pages it touched) after an echo
  run over every queue; the arena is the memfd that holds its rings and
  buffers. The peer column is the vhost process (vuser-pmd --vhost, or testpmd
  with its preallocated `-m 1024`), for scale.
- Machines are noisy: compare ratios within one run, not absolute rates across runs."""


def main():
    raw, meta_path, out = sys.argv[1:4]
    readme = sys.argv[4] if len(sys.argv) > 4 else ""
    meta = {}
    for line in open(meta_path):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v
    b = Bench(raw, meta)
    md_path = os.path.join(out, "bench.md")
    plot = b.plot(os.path.join(out, "bench.png"))
    kept = "\n## What each change bought\n\nOne line per datapath change: the commit, and the 64-byte ratios of this\nbench before and after it, from runs on the same machine.\n"
    if os.path.exists(md_path):
        old = open(md_path).read()
        if KEEP_MARK in old:
            kept = old.split(KEEP_MARK, 1)[1]
    with open(md_path, "w") as f:
        f.write(b.markdown(plot))
        f.write("\n" + kept.lstrip("\n"))
    if readme:
        text = open(readme).read()
        if README_BEGIN in text and README_END in text:
            base = os.path.dirname(os.path.abspath(readme))
            md_rel = os.path.relpath(md_path, base)
            plot_rel = os.path.relpath(plot, base) if plot else None
            head, rest = text.split(README_BEGIN, 1)
            tail = rest.split(README_END, 1)[1]
            with open(readme, "w") as f:
                f.write(head + b.readme_block(md_rel, plot_rel) + tail)
        else:
            sys.stderr.write("%s has no %s ... %s block: left alone\n" % (readme, README_BEGIN, README_END))
    print(md_path)


if __name__ == "__main__":
    main()
