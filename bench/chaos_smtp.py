#!/usr/bin/env python3
"""A recording SMTP server on loopback for bench/chaos.sh.

It accepts every message and keeps it: the raw bytes of each accepted message (dot
stuffing undone, exactly what a mailbox would store) go to SPOOL/messages.bin, and one
line per message to SPOOL/index.tsv:

    accepted_ns  slot  conn  mail_ns  data_ns  recipient  message_id  offset  length

`slot` is which of the listening ports the message came in on (bench/chaos.py gives
each newsdesk instance a port of its own, so a copy can be traced to the instance slot
that sent it), `conn` numbers the connection, `mail_ns` is when its MAIL FROM came,
`data_ns` when its end of data came and `accepted_ns` when the message was taken
(written to the spool, then answered 250, as a real server queues a message before it
answers). Times are CLOCK_REALTIME in nanoseconds. A transaction whose connection is lost before its end of data is logged to
SPOOL/aborted.tsv (`lost_ns slot conn mail_ns recipient`) and not kept.

    python3 bench/chaos_smtp.py --spool DIR --ports 3 [--delay-ms 20]

Listens on PORTS free ports of 127.0.0.1 and writes them, space-separated, to
SPOOL/ports once it is ready. `--delay-ms` waits that long before answering the end
of data, as a distant server does: messages stay in flight for a while. SIGTERM or
SIGINT flushes the spool and exits. Standard library only.
"""

import argparse
import asyncio
import os
import re
import signal
import sys
import time

MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


def message_id(raw: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0]
    # Unfold continuation lines, then find the field.
    head = re.sub(rb"\r\n[ \t]+", b" ", head)
    m = MESSAGE_ID.search(head)
    if not m:
        return "-"
    return m.group(1).strip().decode("ascii", "replace") or "-"


class Spool:
    def __init__(self, directory: str):
        self.data = open(os.path.join(directory, "messages.bin"), "ab")
        self.index = open(os.path.join(directory, "index.tsv"), "a", encoding="utf-8")
        self.aborted = open(os.path.join(directory, "aborted.tsv"), "a", encoding="utf-8")
        self.offset = self.data.tell()
        self.count = 0

    def keep(self, slot, conn, mail_ns, data_ns, recipients, raw):
        offset = self.offset
        self.data.write(raw)
        self.data.flush()
        self.offset += len(raw)
        mid = message_id(raw)
        now = time.time_ns()
        for rcpt in recipients:
            self.index.write(f"{now}\t{slot}\t{conn}\t{mail_ns}\t{data_ns}\t{rcpt}\t{mid}\t{offset}\t{len(raw)}\n")
        self.index.flush()
        self.count += 1

    def lost(self, slot, conn, mail_ns, recipients):
        now = time.time_ns()
        for rcpt in recipients or ["-"]:
            self.aborted.write(f"{now}\t{slot}\t{conn}\t{mail_ns}\t{rcpt}\n")
        self.aborted.flush()

    def close(self):
        for f in (self.data, self.index, self.aborted):
            f.flush()
            f.close()


def unstuff(data: bytes) -> bytes:
    # `data` ends with CRLF . CRLF; the message is everything before the dot line.
    body = data[:-3]
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


class Server:
    def __init__(self, spool: Spool, delay: float):
        self.spool = spool
        self.delay = delay
        self.conns = 0

    def handler(self, slot: int):
        async def handle(reader, writer):
            self.conns += 1
            await self.session(slot, self.conns, reader, writer)

        return handle

    async def session(self, slot, conn, reader, writer):
        mail_ns = None
        recipients = []

        def reply(line: str):
            writer.write(line.encode() + b"\r\n")

        try:
            reply("220 chaos-smtp ESMTP ready")
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    break
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    mail_ns, recipients = None, []
                    if verb == b"EHLO":
                        reply("250-chaos-smtp")
                        reply("250-8BITMIME")
                        reply("250-SMTPUTF8")
                        reply("250 SIZE 104857600")
                    else:
                        reply("250 chaos-smtp")
                elif verb == b"MAIL":
                    mail_ns, recipients = time.time_ns(), []
                    reply("250 2.1.0 Ok")
                elif verb == b"RCPT":
                    m = re.search(rb"<([^>]*)>", line)
                    if mail_ns is None or not m:
                        reply("503 5.5.1 Bad sequence")
                    else:
                        recipients.append(m.group(1).decode("utf-8", "replace").lower())
                        reply("250 2.1.5 Ok")
                elif verb == b"DATA":
                    if mail_ns is None or not recipients:
                        reply("503 5.5.1 Bad sequence")
                    else:
                        reply("354 End data with <CR><LF>.<CR><LF>")
                        await writer.drain()
                        try:
                            data = await reader.readuntil(b"\r\n.\r\n")
                        except asyncio.IncompleteReadError:
                            self.spool.lost(slot, conn, mail_ns, recipients)
                            mail_ns, recipients = None, []
                            break
                        data_ns = time.time_ns()
                        if self.delay > 0:
                            await asyncio.sleep(self.delay)
                        # Queued first, answered second: a client that dies before it
                        # reads the answer has still had its message delivered.
                        self.spool.keep(slot, conn, mail_ns, data_ns, recipients, unstuff(b"\r\n" + data)[2:])
                        mail_ns, recipients = None, []
                        reply("250 2.0.0 Ok: queued")
                elif verb == b"RSET":
                    mail_ns, recipients = None, []
                    reply("250 2.0.0 Ok")
                elif verb == b"NOOP":
                    reply("250 2.0.0 Ok")
                elif verb == b"QUIT":
                    reply("221 2.0.0 Bye")
                    await writer.drain()
                    break
                elif verb == b"VRFY":
                    reply("252 2.0.0 Cannot VRFY")
                else:
                    reply("502 5.5.2 Command not recognized")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if mail_ns is not None and recipients:
                self.spool.lost(slot, conn, mail_ns, recipients)
            writer.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spool", required=True)
    p.add_argument("--ports", type=int, default=1)
    p.add_argument("--delay-ms", type=float, default=0.0)
    args = p.parse_args()
    os.makedirs(args.spool, exist_ok=True)
    spool = Spool(args.spool)
    server = Server(spool, args.delay_ms / 1000.0)
    servers = []
    for slot in range(args.ports):
        s = await asyncio.start_server(server.handler(slot), "127.0.0.1", 0, limit=256 * 1024 * 1024, backlog=1000)
        servers.append(s)
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    tmp = os.path.join(args.spool, "ports.tmp")
    with open(tmp, "w") as f:
        f.write(" ".join(map(str, ports)) + "\n")
    os.replace(tmp, os.path.join(args.spool, "ports"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()
    spool.close()
    print(f"chaos_smtp: {spool.count} messages kept", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
