"""A real SMTP server for end-to-end tests (aiosmtpd, Debian's python3-aiosmtpd): every
message it accepts is appended to --out as one JSON line:

  {"mail_from", "rcpt_tos", "data" (the whole message), "tls" (STARTTLS was used),
   "login" (the AUTH user, or null)}

  --port N                     listen on 127.0.0.1:N
  --out FILE                   where the JSON lines go
  --cert PEM --key PEM         offer STARTTLS with this certificate
  --require-starttls           refuse MAIL before STARTTLS
  --auth USER:PASSWORD         require AUTH (PLAIN/LOGIN) with these credentials

Runs until SIGTERM or SIGINT.
"""
import argparse
import json
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "login": session.auth_data.login.decode() if session.auth_data else None,
        }
        with self.lock, open(self.out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        # handled=False: aiosmtpd answers 535 itself (with True it would answer nothing).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return check


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth")
    args = p.parse_args()
    kwargs = {}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = args.require_starttls
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs["authenticator"] = authenticator(user, password)
        kwargs["auth_required"] = True
    controller = Controller(Sink(args.out), hostname="127.0.0.1", port=args.port, **kwargs)
    controller.start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
