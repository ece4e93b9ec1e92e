"""An SMTP server for the mail tests (aiosmtpd): stores every message it
accepts as JSON in a folder (envelope, decoded headers, subject, body).

    python mail_sink.py --port PORT --dir DIR [--reject ADDR]... [--hold FILE]

--reject answers 550 to RCPT TO of that address; while FILE given with
--hold exists, a message is stored but its DATA is not answered (a send
in flight). Prints "ready" once it listens.
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import signal
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder, reject, hold):
        self.folder = folder
        self.reject = set(a.lower() for a in reject)
        self.hold = hold

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {k.lower(): str(v) for k, v in msg.items()},
            "subject": str(msg["subject"]),
            "body": body.get_content() if body is not None else "",
        }
        name = uuid.uuid4().hex
        tmp = os.path.join(self.folder, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.folder, name + ".json"))
        if self.hold:
            with open(os.path.join(self.folder, name + ".raw"), "wb") as f:
                f.write(envelope.content)
        while self.hold and os.path.exists(self.hold):
            await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--hold")
    a = p.parse_args()
    controller = Controller(Sink(a.dir, a.reject, a.hold), hostname="127.0.0.1", port=a.port)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
