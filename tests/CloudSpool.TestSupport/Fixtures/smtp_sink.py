"""An aiosmtpd handler for CloudSpool's forward tests (and an LMTP target for the import tests' old tools): stores
every accepted message in a maildir, and answers RCPT per recipient with codes configured in DIR/behaviour.json,
re-read on every command so a test can change it while the server runs:
    {"codes": {"phone@carrier.test": "550 5.1.1 no such mailbox"}, "rcpt_delay": 2.5, "data_delay": 4}
(data_delay: the message is stored at once and its 250 reply held that long: a sender stopped meanwhile never hears it).
Run: /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.Sink DIR  (with this folder on PYTHONPATH)."""
import asyncio
import json
import mailbox
import os


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.maildir = mailbox.Maildir(os.path.join(directory, "maildir"), create=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("usage: -c smtp_sink.Sink DIRECTORY")
        return cls(args[0])

    def behaviour(self):
        try:
            with open(os.path.join(self.directory, "behaviour.json"), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        behaviour = self.behaviour()
        delay = behaviour.get("rcpt_delay", 0)
        if delay:
            await asyncio.sleep(delay)
        code = behaviour.get("codes", {}).get(address.lower())
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.maildir.add(envelope.original_content or envelope.content)
        delay = self.behaviour().get("data_delay", 0)
        if delay:
            await asyncio.sleep(delay)
        return "250 2.0.0 accepted"


def main():
    """With SMTP AUTH (which the aiosmtpd command line cannot configure):
    /usr/bin/python3 smtp_sink.py PORT DIR USER PASSWORD  (AUTH PLAIN/LOGIN required, allowed without TLS on loopback).
    As an LMTP server (a delivery target for the old fetch tools that `account import` reads, such as getmail's MDA_lmtp):
    /usr/bin/python3 smtp_sink.py --lmtp PORT DIR"""
    import sys
    import time
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import AuthResult, LoginPassword

    if sys.argv[1] == "--lmtp":
        port, directory = int(sys.argv[2]), sys.argv[3]

        class LmtpController(Controller):
            def factory(self):
                return LMTP(self.handler)

        controller = LmtpController(Sink(directory), hostname="127.0.0.1", port=port)
    else:
        port, directory, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

        controller = Controller(Sink(directory), hostname="127.0.0.1", port=port, authenticator=authenticator,
                                auth_required=True, auth_require_tls=False)
    controller.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
