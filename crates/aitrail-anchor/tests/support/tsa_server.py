#!/usr/bin/env python3
"""A small RFC 3161 timestamp authority for aitrail's tests: `openssl ts -reply` behind
Python's http.server, listening on 127.0.0.1 only.

usage: tsa_server.py DIR

On start it creates in DIR (when missing) a test CA (EC P-256), a TSA certificate under it
(RSA 2048, critical extended key usage timeStamping, as RFC 3161 section 2.3 requires) and a
second certificate under the same CA *without* that usage (for negative tests), then prints
`PORT <n>` on stdout once it listens. It serves:

  POST /tsr     the timestamp reply openssl makes for the request (RFC 3161 section 3.4)
  POST /other   a valid reply, but for other data than the request's (imprint mismatch)
  POST /reject  a TimeStampResp with status rejection and a status text

It exits when its stdin is closed, so it never outlives the test process that started it.
"""

import http.server
import os
import subprocess
import sys
import tempfile
import threading

DIR = os.path.abspath(sys.argv[1])


def run(*args, stdin=None):
    subprocess.run(args, cwd=DIR, check=True, input=stdin, capture_output=True)


def ensure_pki():
    if os.path.exists(os.path.join(DIR, "tsa.cnf")):
        return
    os.makedirs(DIR, exist_ok=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
        "-subj", "/O=aitrail test/CN=aitrail test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    exts = {
        "tsa": "basicConstraints=CA:FALSE\n"
               "keyUsage=critical,digitalSignature,nonRepudiation\n"
               "extendedKeyUsage=critical,timeStamping\n",
        "noeku": "basicConstraints=CA:FALSE\n"
                 "keyUsage=critical,digitalSignature,nonRepudiation\n",
    }
    for name, ext in exts.items():
        with open(os.path.join(DIR, name + ".ext"), "w") as f:
            f.write(ext)
        run("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/O=aitrail test/CN=aitrail test " + name)
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
            "-extfile", name + ".ext", "-out", name + ".crt")
    with open(os.path.join(DIR, "tsaserial"), "w") as f:
        f.write("01\n")
    with open(os.path.join(DIR, "tsa.cnf"), "w") as f:
        f.write(f"""[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {DIR}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")


def der(tag, body):
    n = len(body)
    if n < 0x80:
        head = bytes([tag, n])
    else:
        size = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([tag, 0x80 | len(size)]) + size
    return head + body


def rejection(text):
    # TimeStampResp { PKIStatusInfo { status rejection(2), statusString { UTF8String } } }
    status = der(0x02, b"\x02") + der(0x30, der(0x0C, text.encode()))
    return der(0x30, der(0x30, status))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        query = self.rfile.read(length)
        if self.headers.get("Content-Type") != "application/timestamp-query":
            self.send_error(415, "send application/timestamp-query")
            return
        if self.path == "/reject":
            self.answer(rejection("policy says no"))
            return
        with tempfile.TemporaryDirectory() as tmp:
            qpath = os.path.join(tmp, "q.tsq")
            if self.path == "/other":
                data = os.path.join(tmp, "other")
                with open(data, "wb") as f:
                    f.write(b"other data")
                run("openssl", "ts", "-query", "-data", data, "-sha256", "-cert",
                    "-out", qpath)
            elif self.path == "/tsr":
                with open(qpath, "wb") as f:
                    f.write(query)
            else:
                self.send_error(404)
                return
            rpath = os.path.join(tmp, "r.tsr")
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-config", os.path.join(DIR, "tsa.cnf"),
                 "-queryfile", qpath, "-out", rpath],
                cwd=DIR, capture_output=True)
            if done.returncode != 0:
                self.send_error(500, done.stderr.decode(errors="replace")[:200])
                return
            with open(rpath, "rb") as f:
                self.answer(f.read())

    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("tsa_server: " + (fmt % args) + "\n")


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


def main():
    ensure_pki()
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
