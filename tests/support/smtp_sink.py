"""A real SMTP server for the black-box tests (aiosmtpd from PyPI).

Usage: python3 smtp_sink.py HOST PORT DIR

Accepts every message and writes it to DIR as one JSON file (written whole, then renamed):
the envelope (`mail_from`, `rcpt_tos`), the headers `from`, `to`, `subject`, and the decoded
`text` and `html` parts. Prints `ready` once it listens; runs until killed.
"""

import asyncio
import email
import email.policy
import itertools
import json
import os
import sys
import time

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = itertools.count()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "from": str(msg["From"] or ""),
            "to": str(msg["To"] or ""),
            "subject": str(msg["Subject"] or ""),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
        }
        name = f"{time.time_ns()}-{next(self.count)}"
        tmp = os.path.join(self.out, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, f"{name}.json"))
        return "250 Message accepted for delivery"


async def main(host, port, out):
    os.makedirs(out, exist_ok=True)
    handler = Sink(out)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), host, port)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
