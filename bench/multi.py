#!/usr/bin/env python3
"""Delivery rate of one digest with 1 and with 3 `newsdesk serve` instances on one
PostgreSQL database, sending to Postfix's smtp-sink on loopback, with the CPU time the
database spent per message beside newsdesk's, and each instance's peak memory (VmHWM).
Run it through bench/multi.sh; see bench/README.md.

For each instance count: a fresh copy of one prepared database (list `chaos`, READERS
confirmed readers), the instances started, the digest built through the API of the
first one (timed: `build`), then delivered by all of them (timed from the build's end
to the last delivery row leaving `pending`: `send`). CPU is utime + stime from
/proc/PID/stat: newsdesk's processes; the PostgreSQL backends serving this database
(found in pg_stat_activity, sampled every half second); the whole cluster's postgres
processes (other users of the cluster count there too); smtp-sink.
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos import LIST, PERIOD, Harness, HarnessError, Instance, free_port, log, read_proc_stat, vm_hwm_kib  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cluster_pids():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(d))
            except OSError:
                pass
    return pids


class CpuTally:
    """CPU ticks of a changing set of processes since `start`: a process seen first
    after the start counts from zero."""

    def __init__(self):
        self.base = {}
        self.last = {}
        self.started = False

    def sample(self, pids):
        for pid in pids:
            t = read_proc_stat(pid)
            if t is None:
                continue
            if pid not in self.base:
                self.base[pid] = t if not self.started else 0
            self.last[pid] = t

    def start(self, pids):
        self.base, self.last = {}, {}
        self.sample(pids)
        self.started = True

    def seconds(self):
        return sum(self.last[p] - self.base[p] for p in self.last) / TICK


def run(h, n, readers):
    a = h.args
    name = f"i{n}"
    db = f"{h.prefix}_{name}"
    h.pg.create(db, template=h.base_db)
    h.dbs.append(db)
    port = free_port()
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-u", "root", f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        insts = [Instance(h, i, db, port) for i in range(n)]
        h.instances = insts
        for i in insts:
            i.start()
        for i in insts:
            i.wait_ready()
        backends_sql = f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}'"

        def backends():
            return [int(r[0]) for r in h.pg.admin(backends_sql)]

        mine, cluster, nd = CpuTally(), CpuTally(), CpuTally()
        mine.start(backends())
        cluster.start(cluster_pids())
        nd.start([i.proc.pid for i in insts] + [sink.pid])
        sink_base = read_proc_stat(sink.pid)
        t0 = time.time()
        _, digest = insts[0].api("POST", f"/api/v1/lists/{LIST}/digests", {"period": PERIOD})
        t1 = time.time()
        pending_sql = f"SELECT count(*) FROM deliveries WHERE digest_id = {digest['id']} AND status IN ('pending', 'sending')"
        while True:
            mine.sample(backends())
            cluster.sample(cluster_pids())
            nd.sample([i.proc.pid for i in insts])
            for i in insts:
                i.note_usage()
            if int(h.pg.query(db, pending_sql)[0][0]) == 0:
                break
            if time.time() - t0 > a.timeout:
                raise HarnessError(f"{name}: not delivered after {a.timeout}s")
            time.sleep(0.5)
        t2 = time.time()
        nd_secs = sum(nd.last[i.proc.pid] - nd.base[i.proc.pid] for i in insts) / TICK
        sink_secs = (read_proc_stat(sink.pid) - sink_base) / TICK
        sent = int(h.pg.query(db, f"SELECT count(*) FROM deliveries WHERE digest_id = {digest['id']} AND status = 'sent'")[0][0])
        peaks = []
        for i in insts:
            i.note_usage()
            peaks.append(i.peak_kib)
            i.stop()
        build, send = t1 - t0, t2 - t1
        us = lambda secs: secs * 1e6 / max(sent, 1)  # noqa: E731
        line = (f"RESULT instances={n} readers={readers} sent={sent} build={build:.1f}s send={send:.1f}s "
                f"rate={sent / send:.0f} msg/s (with build {sent / (t2 - t0):.0f}) "
                f"cpu/msg: newsdesk {us(nd_secs):.0f} us, postgres backends {us(mine.seconds()):.0f} us, "
                f"postgres cluster {us(cluster.seconds()):.0f} us, smtp-sink {us(sink_secs):.0f} us; "
                f"VmHWM " + " ".join(f"{p / 1024:.0f}MiB" for p in peaks))
        log(line)
        return line
    finally:
        sink.terminate()
        sink.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--readers", type=int, default=100000)
    p.add_argument("--instances", default="1,3")
    p.add_argument("--lease", type=int, default=60)
    p.add_argument("--pool", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--poll-ms", type=int, default=200)
    p.add_argument("--timeout", type=float, default=7200)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    a.libfaketime = ""
    h = Harness(a)
    lines = []
    try:
        log(f"=== newsdesk on PostgreSQL, instances {a.instances}: {a.bin}; pool {a.pool}, "
            f"concurrency {a.concurrency}, batch {a.batch}; {os.cpu_count()} cores")
        t = time.time()
        h.prepare()
        log(f"    prepared in {time.time() - t:.0f}s")
        for n in [int(x) for x in a.instances.split(",")]:
            lines.append(run(h, n, a.readers))
            h.instances = []
    finally:
        h.cleanup()
    log("")
    for line in lines:
        log(line)


if __name__ == "__main__":
    try:
        main()
    except HarnessError as e:
        log(f"multi: {e}")
        sys.exit(2)
