#!/usr/bin/env python3
"""Exactly-once delivery across three `newsdesk serve` instances on one PostgreSQL
database, under SIGKILLs, a skewed clock and a paused process. Run it through
bench/chaos.sh (which installs faketime and picks the binary); see bench/README.md.

Each scenario gets a fresh copy of one prepared database (a list `chaos` of READERS
confirmed readers), a fresh recording SMTP server (bench/chaos_smtp.py, one port per
instance slot) and three fresh instances with short leases; one digest is triggered
through the API of the first instance and all three deliver it. Counted at the SMTP
server once every delivery is final and nothing more arrives:

  gaps        readers of the digest with no copy (cross-checked with the delivery rows)
  duplicates  copies beyond the first, per reader
  identical   duplicates byte-identical to the reader's first copy

Targets: 0 gaps always; 0 duplicates with skew and with the pause (a row handed to the
mail server stays its worker's for 6 leases, longer than the pause, so what the paused
instance had in flight is sent once, by it, when it wakes); after kills each duplicate
follows a kill of the instance that sent the first copy, at most IN_FLIGHT (the messages
it may have in flight) per kill, each byte-identical to its first copy and sent again
once the hold of the killed worker's rows has run out. Exits 1 when a scenario misses its target,
2 on a harness error.
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "chaos-harness-admin-token-0123456789"
LIST = "chaos"
PERIOD = "2023-W45"


class HarnessError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postgres:
    def __init__(self, base_url):
        self.base = base_url.rstrip("/")

    def url(self, db):
        return f"{self.base}/{db}"

    def query(self, db, sql):
        r = subprocess.run(
            ["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", self.url(db), "-c", sql],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise HarnessError(f"psql failed: {r.stderr.strip()}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def admin(self, sql):
        return self.query("postgres", sql)

    def create(self, db, template=None):
        self.drop(db)
        self.admin(f'CREATE DATABASE "{db}"' + (f' TEMPLATE "{template}"' if template else ""))

    def drop(self, db):
        self.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def read_proc_stat(pid):
    """utime + stime in clock ticks, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Instance:
    """One `newsdesk serve` in a slot: its own HTTP port and SMTP port, restarted in
    the same slot after a kill."""

    def __init__(self, h, slot, db, smtp_port, faketime=None):
        self.h, self.slot, self.db, self.smtp_port = h, slot, db, smtp_port
        self.port = free_port()
        self.faketime = faketime
        self.proc = None
        self.starts = 0
        self.logfile = os.path.join(h.work, f"{db}-instance{slot}.log")
        self.peak_kib = 0
        self.cpu_ticks = 0  # of processes of this slot that ended

    def env(self):
        e = dict(os.environ)
        e.update(
            DATABASE_URL=self.h.pg.url(self.db),
            NEWSDESK_BIND=f"127.0.0.1:{self.port}",
            NEWSDESK_BASE_URL="https://news.example.edu",
            NEWSDESK_ADMIN_TOKEN=TOKEN,
            NEWSDESK_SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            NEWSDESK_MAIL_FROM="Chaos News <news@chaos.example.edu>",
            NEWSDESK_DELIVERY_LEASE_SECS=str(self.h.args.lease),
            NEWSDESK_SMTP_POOL_SIZE=str(self.h.args.pool),
            NEWSDESK_SEND_CONCURRENCY=str(self.h.args.concurrency),
            NEWSDESK_SEND_BATCH=str(self.h.args.batch),
            NEWSDESK_POLL_MS=str(self.h.args.poll_ms),
            NEWSDESK_RETRY_BASE_SECS="1",
            NEWSDESK_RETRY_MAX_SECS="5",
            NEWSDESK_OUTBOX_DIR=os.path.join(self.h.work, "outbox"),
            RUST_LOG=os.environ.get("RUST_LOG", "warn"),
        )
        if self.faketime:
            e.update(
                LD_PRELOAD=self.h.libfaketime,
                FAKETIME=self.faketime,
                FAKETIME_DONT_FAKE_MONOTONIC="1",
                FAKETIME_NO_CACHE="1",
            )
        return e

    def start(self):
        self.starts += 1
        with open(self.logfile, "a") as out:
            out.write(f"=== start {self.starts} at {time.time():.3f}\n")
            out.flush()
            self.proc = subprocess.Popen(
                [self.h.args.bin, "serve"], env=self.env(), stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.alive():
                raise HarnessError(f"instance {self.slot} exited ({self.proc.returncode}); see {self.logfile}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise HarnessError(f"instance {self.slot} not ready after {timeout}s; see {self.logfile}")

    def note_usage(self):
        if self.alive():
            hwm = vm_hwm_kib(self.proc.pid)
            if hwm:
                self.peak_kib = max(self.peak_kib, hwm)

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL; returns the moment it was sent (ns)."""
        self.note_usage()
        t = time.time_ns()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return t

    def stop(self, timeout=20):
        if not self.alive():
            return
        self.note_usage()
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def clock_offset(self):
        """How far this instance's clock is from ours, in seconds, as its Date header says."""
        import email.utils

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
            date = r.headers["Date"]
        return email.utils.parsedate_to_datetime(date).timestamp() - time.time()

    def api(self, method, path, body=None, timeout=3600):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise HarnessError(f"{method} {path}: {e.code} {e.read()[:500]!r}")


class Recorder:
    def __init__(self, h, name, slots):
        self.spool = os.path.join(h.work, f"{name}-smtp")
        os.makedirs(self.spool)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "chaos_smtp.py"), "--spool", self.spool,
             "--ports", str(slots), "--delay-ms", str(h.args.smtp_delay_ms)],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.spool, "stderr"), "w"),
        )
        ports_file = os.path.join(self.spool, "ports")
        for _ in range(100):
            if os.path.exists(ports_file):
                break
            time.sleep(0.05)
        else:
            raise HarnessError("the recording SMTP server did not start")
        self.ports = [int(p) for p in open(ports_file).read().split()]
        self.index = os.path.join(self.spool, "index.tsv")
        self._seen_bytes = 0
        self._seen = 0

    def count(self):
        """Messages accepted so far (lines of the index)."""
        try:
            with open(self.index, "rb") as f:
                f.seek(self._seen_bytes)
                chunk = f.read()
        except FileNotFoundError:
            return 0
        end = chunk.rfind(b"\n") + 1
        self._seen += chunk[:end].count(b"\n")
        self._seen_bytes += end
        return self._seen

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def messages(self):
        out = []
        with open(self.index, encoding="utf-8") as f:
            for line in f:
                acc, slot, conn, mail, data, rcpt, mid, off, ln = line.rstrip("\n").split("\t")
                out.append(dict(accepted=int(acc), slot=int(slot), conn=int(conn), mail=int(mail), data=int(data),
                                rcpt=rcpt, mid=mid, offset=int(off), length=int(ln)))
        return out

    def aborted(self):
        out = []
        path = os.path.join(self.spool, "aborted.tsv")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    lost, slot, conn, mail, rcpt = line.rstrip("\n").split("\t")
                    out.append(dict(lost=int(lost), slot=int(slot), mail=int(mail), rcpt=rcpt))
        return out

    def raw(self, m):
        with open(os.path.join(self.spool, "messages.bin"), "rb") as f:
            f.seek(m["offset"])
            return f.read(m["length"])


def headers_of(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    fields = collections.OrderedDict()
    name = None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += b" " + line.strip()
        else:
            n, _, v = line.partition(b":")
            name = n.strip().lower().decode("ascii", "replace")
            fields.setdefault(name, []).append(v.strip())
    return fields, body


def what_differs(a, b):
    ha, ba = headers_of(a)
    hb, bb = headers_of(b)
    names = [n for n in sorted(set(ha) | set(hb)) if ha.get(n) != hb.get(n)]
    if ba != bb:
        names.append("(body)")
    return names


class Harness:
    def __init__(self, args):
        self.args = args
        self.pg = Postgres(args.postgres)
        self.work = tempfile.mkdtemp(prefix="newsdesk-chaos-")
        self.prefix = f"newsdesk_chaos_{os.getpid()}"
        self.base_db = f"{self.prefix}_base"
        self.instances = []
        self.recorders = []
        self.dbs = []
        self.libfaketime = args.libfaketime

    # ---------------------------------------------------------------- set-up
    def prepare(self):
        a = self.args
        log(f"--- preparing {self.base_db}: list '{LIST}' with {a.readers} confirmed readers")
        self.pg.create(self.base_db)
        self.dbs.append(self.base_db)
        env = dict(os.environ, DATABASE_URL=self.pg.url(self.base_db), RUST_LOG="warn")
        subprocess.run([a.bin, "demo"], env=env, check=True, stdout=subprocess.DEVNULL)
        # The list, through the API of an instance without workers.
        inst = Instance(self, 0, self.base_db, free_port())
        inst.logfile = os.path.join(self.work, "setup.log")
        os.environ["NEWSDESK_WORKERS"] = "off"
        try:
            inst.start()
            inst.wait_ready()
            inst.api("POST", "/api/v1/lists", {
                "slug": LIST, "name": "Chaos", "description": "bench/chaos.py",
                "categories": ["news-events"], "visibility": "private",
                # Never fires during a run: the digest is triggered by hand.
                "schedule_cron": "0 0 3 1 1 *", "schedule_timezone": "UTC", "grace_minutes": 0,
            })
        finally:
            del os.environ["NEWSDESK_WORKERS"]
            inst.stop()
        csv = os.path.join(self.work, "readers.csv")
        with open(csv, "w") as f:
            f.write("email,name\n")
            for i in range(a.readers):
                f.write(f"reader{i}@r{i % 97}.example.org,Reader {i}\n")
        t = time.time()
        r = subprocess.run([a.bin, "subscribers", "import", csv, "--list", LIST, "--consent-source", "chaos harness"],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise HarnessError(f"import failed: {r.stderr[-2000:]}")
        members = self.pg.query(self.base_db, "SELECT count(*) FROM memberships m JOIN lists l ON l.id = m.list_id "
                                f"WHERE l.slug = '{LIST}' AND m.status = 'confirmed'")[0][0]
        log(f"    imported in {time.time() - t:.1f}s: {members} confirmed members")
        if int(members) != a.readers:
            raise HarnessError(f"expected {a.readers} confirmed members, found {members}")

    # ---------------------------------------------------------------- one run
    def run(self, name):
        a = self.args
        db = f"{self.prefix}_{name}"
        self.pg.create(db, template=self.base_db)
        self.dbs.append(db)
        rec = Recorder(self, name, 3)
        self.recorders.append(rec)
        skewed = 2 if name == "skew" else None
        insts = [Instance(self, i, db, rec.ports[i], faketime=(f"+{a.skew}s" if i == skewed else None))
                 for i in range(3)]
        self.instances = insts
        for i in insts:
            i.start()
        for i in insts:
            i.wait_ready()
        if skewed is not None:
            ahead = insts[skewed].clock_offset()
            log(f"    slot {skewed}'s clock (its HTTP Date header): {ahead:+.0f}s")
            if abs(ahead - a.skew) > 5:
                raise HarnessError(f"slot {skewed} runs {ahead:+.0f}s, not +{a.skew}s: libfaketime not in effect")
        t0 = time.time()
        _, digest = insts[0].api("POST", f"/api/v1/lists/{LIST}/digests", {"period": PERIOD})
        digest_id = digest["id"]
        built = time.time() - t0
        events = dict(kills=[], pause=None)
        pending_sql = f"SELECT count(*) FROM deliveries WHERE digest_id = {digest_id} AND status IN ('pending', 'sending')"

        def pending():
            return int(self.pg.query(db, pending_sql)[0][0])

        deadline = time.time() + a.timeout
        if name == "kills":
            lo, hi = a.kill_every
            for _ in range(a.kills):
                time.sleep(random.uniform(lo, hi))
                if pending() == 0:
                    break
                victim = random.choice(insts)
                t = victim.kill()
                events["kills"].append((t, victim.slot))
                time.sleep(random.uniform(0.1, 0.8))
                victim.start()
        elif name == "pause":
            # Paused once a good part is under way, past its lease, then resumed.
            while rec.count() < a.readers * 0.15 and time.time() < deadline:
                time.sleep(0.05)
            victim = insts[1]
            victim.note_usage()
            t = time.time_ns()
            victim.signal(signal.SIGSTOP)
            # Past its lease, and until the others have sent everything they can, the
            # rows it held included: then whatever it sends on waking is a second copy.
            # Rows that stay pending for two leases more are out of their reach (a row
            # lock held by the stopped process's open transaction, say).
            time.sleep(a.lease + a.pause_extra)
            left, since = pending(), time.time()
            while left > 0 and time.time() - since < 2 * a.lease and time.time() < deadline:
                time.sleep(0.25)
                now_left = pending()
                if now_left != left:
                    left, since = now_left, time.time()
            idle_in_tx = self.pg.admin(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND state LIKE 'idle in transaction%%'" % db)[0][0]
            victim.signal(signal.SIGCONT)
            events["pause"] = (t, time.time_ns(), victim.slot, left, int(idle_in_tx))
        # Done when nothing is pending, no instance is down, and nothing more arrives.
        last, still_since = -1, time.time()
        while True:
            if time.time() > deadline:
                for i in insts:
                    i.stop()
                rec.stop()
                raise HarnessError(f"{name}: not finished after {a.timeout}s ({pending()} pending)")
            for i in insts:
                i.note_usage()
            n = rec.count()
            if n != last:
                last, still_since = n, time.time()
            if pending() == 0 and time.time() - still_since >= a.settle:
                break
            time.sleep(0.25)
        elapsed = time.time() - t0
        for i in insts:
            i.stop()
        rec.stop()
        return self.judge(name, db, digest_id, rec, insts, events, built, elapsed)

    # ---------------------------------------------------------------- counting
    def judge(self, name, db, digest_id, rec, insts, events, built, elapsed):
        a = self.args
        rows = self.pg.query(
            db,
            "SELECT lower(s.email), d.status, coalesce(d.message_id, '-') FROM deliveries d "
            f"JOIN subscribers s ON s.id = d.subscriber_id WHERE d.digest_id = {digest_id}",
        )
        expected = {email: (status, mid) for email, status, mid in rows}
        digests = int(self.pg.query(db, "SELECT count(*) FROM digests")[0][0])
        states = collections.Counter(status for status, _ in expected.values())
        msgs = rec.messages()
        by_rcpt = collections.defaultdict(list)
        for m in msgs:
            by_rcpt[m["rcpt"]].append(m)
        for copies in by_rcpt.values():
            copies.sort(key=lambda m: m["accepted"])
        gaps = [e for e in expected if e not in by_rcpt]
        gap_states = collections.Counter(expected[e][0] for e in gaps)
        unexpected = [r for r in by_rcpt if r not in expected]
        sent_not_received = sum(1 for e, (st, _) in expected.items() if st == "sent" and e not in by_rcpt)
        received_not_sent = collections.Counter(expected[e][0] for e in by_rcpt if e in expected and expected[e][0] != "sent")
        mid_not_received = sum(1 for e, (st, mid) in expected.items()
                               if st == "sent" and e in by_rcpt and mid not in {m["mid"] for m in by_rcpt[e]})
        extra = []  # (first copy, this copy)
        for r, copies in by_rcpt.items():
            for c in copies[1:]:
                extra.append((copies[0], c))
        readers_dup = sum(1 for c in by_rcpt.values() if len(c) > 1)
        readers_3 = sum(1 for c in by_rcpt.values() if len(c) > 2)
        identical = 0
        differs = collections.Counter()
        same_mid = 0
        for first, c in extra:
            ra, rb = rec.raw(first), rec.raw(c)
            if ra == rb:
                identical += 1
            else:
                for n in what_differs(ra, rb):
                    differs[n] += 1
            if first["mid"] == c["mid"]:
                same_mid += 1

        # Each duplicate traced to the kill of the slot that sent its first copy: the
        # first kill of that slot after the first copy's MAIL FROM (its data may have
        # come in, and been taken, only after the kill: it was in flight).
        kills = sorted(events["kills"])
        per_kill = collections.Counter()
        ages = []
        unexplained = 0
        unexplained_notes = []
        # A copy of a message that was in flight when its instance was stopped, the
        # transaction begun before the SIGSTOP: the others resend it once the lease has
        # lapsed, as after a kill; whichever copy came first.
        stop = (events["pause"][0], events["pause"][2]) if events["pause"] else None
        for first, c in extra:
            if stop and any(m["slot"] == stop[1] and m["mail"] <= stop[0] for m in (first, c)):
                per_kill[stop] += 1
                continue
            after = [(t, s) for t, s in kills if s == first["slot"] and t >= first["mail"]]
            if after and after[0][0] - first["mail"] <= a.lease * 1e9:
                per_kill[after[0]] += 1
                ages.append((after[0][0] - first["data"]) / 1e6)
            else:
                unexplained += 1
                if name == "kills" and unexplained <= 5:
                    near = min(((t - first["mail"]) / 1e9 for t, s in kills if s == first["slot"]), key=abs, default=None)
                    unexplained_notes.append(
                        f"{first['rcpt']}: first copy from slot {first['slot']}, second from slot {c['slot']} "
                        f"{(c['accepted'] - first['accepted']) / 1e9:.1f}s later; nearest kill of slot {first['slot']}: "
                        + (f"{near:+.1f}s from the first copy's MAIL FROM" if near is not None else "none"))
        aborted = rec.aborted()
        with open(os.path.join(rec.spool, "duplicates.tsv"), "w") as f:
            f.write("recipient\tfirst_slot\tfirst_conn\tfirst_mail_ns\tfirst_data_ns\tfirst_accepted_ns\tslot\tconn\tmail_ns\taccepted_ns\trow\n")
            for first, c in extra:
                f.write(f"{first['rcpt']}\t{first['slot']}\t{first['conn']}\t{first['mail']}\t{first['data']}\t{first['accepted']}\t"
                        f"{c['slot']}\t{c['conn']}\t{c['mail']}\t{c['accepted']}\t{expected.get(c['rcpt'], ('-',))[0]}\n")
        with open(os.path.join(rec.spool, "events.tsv"), "w") as f:
            for t, s in kills:
                f.write(f"kill\t{t}\t{s}\n")
            if events["pause"]:
                f.write("stop\t{0}\t{2}\ncont\t{1}\t{2}\n".format(*events["pause"][:3]))
        in_exchange = {}
        for t, s in kills:
            in_exchange[(t, s)] = sum(1 for m in msgs if m["slot"] == s and m["mail"] <= t < m["accepted"]) + \
                sum(1 for m in aborted if m["slot"] == s and m["mail"] <= t)

        # In flight: in an SMTP exchange (at most --concurrency) or accepted with its
        # mark not yet committed (the recorder's group commit); see README.
        bound = a.in_flight or 3 * a.concurrency
        ok = True
        why = []
        if gaps:
            ok = False
            why.append(f"{len(gaps)} gaps")
        if unexpected:
            ok = False
            why.append(f"{len(unexpected)} messages to readers outside the digest")
        if name in ("skew", "calm") and extra:
            ok = False
            why.append(f"{len(extra)} duplicates (target 0)")
        if name == "pause" and extra:
            # A paused worker's handed rows are held for it (6 leases, longer than the
            # pause): what it had in flight is its own when it wakes, sent once.
            ok = False
            why.append(f"{len(extra)} duplicates (target 0; {per_kill.get(stop, 0)} of them in flight at the SIGSTOP)")
            if identical < len(extra):
                why.append(f"{len(extra) - identical} of {len(extra)} duplicates differ from their first copy")
        if name == "kills":
            if len(kills) < a.kills:
                ok = False
                why.append(f"only {len(kills)} of {a.kills} kills happened before the digest was done")
            worst = max(per_kill.values(), default=0)
            if worst > bound:
                ok = False
                why.append(f"up to {worst} duplicates from one kill (bound {bound} in flight)")
            if unexplained:
                ok = False
                why.append(f"{unexplained} duplicates not explained by a kill")
            if identical < len(extra):
                ok = False
                why.append(f"{len(extra) - identical} of {len(extra)} duplicates differ from their first copy")
        if received_not_sent:
            why.append("received but recorded as " + ", ".join(f"{k} {v}" for k, v in received_not_sent.items()))
        if sent_not_received:
            ok = False
            why.append(f"{sent_not_received} recorded sent but never received")

        log(f"    digest {digest_id} built in {built:.1f}s; all final after {elapsed:.1f}s; "
            f"{len(msgs)} messages accepted ({len(msgs) / max(elapsed, 1e-9):.0f}/s); digests in the database: {digests}")
        log("    delivery rows: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
        if gaps:
            log("    gaps by recorded state: " + ", ".join(f"{k} {v}" for k, v in gap_states.items()))
        if received_not_sent:
            log("    received, but the row says: " + ", ".join(f"{k} {v}" for k, v in received_not_sent.items()))
        if mid_not_received:
            log(f"    rows whose recorded Message-ID was never received: {mid_not_received}")
        if extra:
            log(f"    duplicates: {len(extra)} extra copies to {readers_dup} readers ({readers_3} got 3 or more); "
                f"same Message-ID as the first copy: {same_mid}; byte-identical: {identical}")
            if differs:
                log("    what differs from the first copy (copies): "
                    + ", ".join(f"{n} {k}" for n, k in differs.most_common()))
        if events["kills"]:
            starts = {i.slot: i.starts for i in insts}
            log(f"    kills: {len(kills)} (slot starts {starts}); duplicates per kill: "
                + " ".join(str(per_kill.get(k, 0)) for k in kills))
            log("    in an SMTP exchange at each kill: " + " ".join(str(in_exchange[k]) for k in kills)
                + f"; bound per kill (messages in flight at most): {bound}")
            if ages:
                ages.sort()
                log(f"    end of data of first copies before their kill: {ages[0]:.0f} to {ages[-1]:.0f} ms "
                    f"(median {ages[len(ages) // 2]:.0f} ms; negative: the data came after the kill signal)")
        for note in unexplained_notes:
            log(f"    not explained by a kill: {note}")
        if events["pause"]:
            t1, t2, s, left, idle_in_tx = events["pause"]
            late = sum(1 for m in msgs if m["slot"] == s and m["accepted"] > t2 and m["mail"] <= t2 + 2e9)
            log(f"    duplicates of messages in flight at the SIGSTOP (begun before it): {per_kill.get(stop, 0)} "
                f"(bound {bound}); other duplicates: {unexplained}")
            log(f"    slot {s} stopped {(t2 - t1) / 1e9:.1f}s (lease {a.lease}s; until the others had sent what they could); "
                f"messages it sent right after SIGCONT: {late}")
            if left:
                log(f"    {left} rows were still pending at SIGCONT, untouched by the others for {2 * a.lease}s "
                    f"(rows it had handed to the mail server are held for it for 6 leases); "
                    f"connections idle in a transaction then: {idle_in_tx} (row locks the others skip)")
                if left > bound:
                    why.append(f"{left} rows waited for the paused instance (more than the {bound} it can have in flight)")
        log("    peak memory (VmHWM) per slot: " + ", ".join(f"{i.slot}: {i.peak_kib / 1024:.0f} MiB" for i in insts))
        summary = {
            "kills": f"kills={len(kills)}",
            "skew": f"skew=+{a.skew}s",
            "pause": f"pause={(events['pause'][1] - events['pause'][0]) / 1e9:.0f}s" if events["pause"] else "pause=-",
            "calm": "calm",
        }[name]
        verdict = "PASS" if ok else "FAIL"
        line = (f"RESULT {name:5} readers={len(expected)} {summary} lease={a.lease}s received={len(msgs)} "
                f"gaps={len(gaps)} duplicates={len(extra)} identical={identical}/{len(extra)} "
                + (f"unexplained={unexplained} max_per_kill={max(per_kill.values(), default=0)}/{bound} "
                   if name in ("kills", "pause") else "")
                + f"-> {verdict}"
                + (f" ({'; '.join(why)})" if why else ""))
        return ok, line

    def cleanup(self):
        for i in self.instances:
            try:
                i.stop(5)
            except Exception:
                pass
        for r in self.recorders:
            if r.proc.poll() is None:
                r.stop()
        if not self.args.keep:
            for db in self.dbs:
                try:
                    self.pg.drop(db)
                except HarnessError:
                    pass
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"kept: {self.work} and databases {', '.join(self.dbs)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--libfaketime", default="")
    p.add_argument("--short", action="store_true", help="CI form: 2,000 readers, 3 kills, skew and pause")
    p.add_argument("--scenarios", default="kills,skew,pause", help="comma-separated: kills, skew, pause, calm")
    p.add_argument("--readers", type=int)
    p.add_argument("--kills", type=int)
    p.add_argument("--kill-every", type=float, nargs=2, metavar=("MIN", "MAX"))
    p.add_argument("--lease", type=int, default=10)
    p.add_argument("--skew", type=int, default=90)
    p.add_argument("--pause-extra", type=int, default=5, help="seconds the pause lasts beyond the lease")
    p.add_argument("--pool", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--in-flight", type=int, default=0,
                   help="duplicates allowed per kill (and at the SIGSTOP); default: 3 x --concurrency, the messages "
                        "an instance has in flight: in an SMTP exchange (at most --concurrency) or accepted "
                        "and waiting for their mark's commit (README, Delivery)")
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--poll-ms", type=int, default=200)
    p.add_argument("--smtp-delay-ms", type=float)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--seed", type=int)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    defaults = dict(readers=2000, kills=3, kill_every=[1.0, 2.0], smtp_delay_ms=60.0) if a.short else \
        dict(readers=20000, kills=10, kill_every=[1.0, 3.0], smtp_delay_ms=20.0)
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    random.seed(a.seed)
    scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    if "skew" in scenarios and not (a.libfaketime and os.path.exists(a.libfaketime)):
        raise SystemExit("the skew scenario needs libfaketime (--libfaketime PATH)")
    log(f"=== newsdesk chaos: {a.bin}; {a.readers} readers, 3 instances, lease {a.lease}s, pool {a.pool}, "
        f"concurrency {a.concurrency}, batch {a.batch}, SMTP answer delay {a.smtp_delay_ms} ms, seed {a.seed}")
    h = Harness(a)
    results = []
    try:
        h.prepare()
        for s in scenarios:
            log(f"--- scenario {s}")
            results.append(h.run(s))
            h.instances = []
    except HarnessError as e:
        log(f"chaos: harness error: {e}")
        for _, line in results:
            log(line)
        h.args.keep = True
        h.cleanup()
        return 2
    except BaseException:
        h.cleanup()
        raise
    h.cleanup()
    log("")
    for _, line in results:
        log(line)
    return 0 if all(ok for ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
