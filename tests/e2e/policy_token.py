#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Tokens and key sets for the policy end-to-end tests (test_policy.sh).

    policy_token.py keygen PEM            a new Ed25519 private key (mode 600)
    policy_token.py jwks OUT PEM=KID...   a JWKS of those keys' public halves
    policy_token.py sign PEM KID CLAIMS   a compact JWS (EdDSA) of the JSON
                                          object CLAIMS, on stdout
    policy_token.py serve DIR CERT KEY    HTTPS on 127.0.0.1 (a port the OS
                                          picks, printed once listening):
                                          GET /NAME is DIR/NAME; every
                                          request is a line in DIR/requests.log

Tokens are signed here with `cryptography` (no JWT library): the test must
know exactly what it hands to bridle.
"""
import base64
import json
import os
import socket
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def keygen(path):
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def jwks(out, specs):
    keys = []
    for spec in specs:
        pem, _, kid = spec.partition("=")
        raw = load_key(pem).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys.append({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
                     "use": "sig", "kid": kid, "x": b64url(raw)})
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"keys": keys}, f)
    os.replace(tmp, out)  # readers see the old set or the new, never half


def sign(pem, kid, claims):
    header = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
    signing_input = "%s.%s" % (
        b64url(json.dumps(header, separators=(",", ":")).encode()),
        b64url(json.dumps(json.loads(claims), separators=(",", ":")).encode()))
    sig = load_key(pem).sign(signing_input.encode())
    print(signing_input + "." + b64url(sig))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        name = self.path.split("?", 1)[0].lstrip("/")
        with open(os.path.join(self.server.root, "requests.log"), "a") as f:
            f.write("GET /%s\n" % name)
        if not name or "/" in name or name.startswith("."):
            self.send_error(404)
            return
        try:
            with open(os.path.join(self.server.root, name), "rb") as f:
                body = f.read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET

    def get_request(self):
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass


def serve(root, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.ctx = ctx
    srv.root = root
    os.write(1, b"%d\n" % srv.server_address[1])
    srv.serve_forever()


def main(argv):
    if len(argv) >= 2 and argv[0] == "keygen":
        keygen(argv[1])
    elif len(argv) >= 3 and argv[0] == "jwks":
        jwks(argv[1], argv[2:])
    elif len(argv) == 4 and argv[0] == "sign":
        sign(argv[1], argv[2], argv[3])
    elif len(argv) == 4 and argv[0] == "serve":
        serve(argv[1], argv[2], argv[3])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
