#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# HTTPS file server for tests/unit/test_jwks.c, on 127.0.0.1 only, at a
# port the OS picks, printed on stdout once listening.
#   jwks_https_server.py DIR CERT KEY
# Serves DIR/<name> for GET /<name>, 404 when absent. Two prefixes change
# how: /stream/<name> sends the body without a Content-Length (ended by
# closing the connection), /slow/<name> waits 3 s first.
import os
import socket
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        stream = path.startswith("/stream/")
        if stream:
            path = path[len("/stream"):]
        elif path.startswith("/slow/"):
            path = path[len("/slow"):]
            time.sleep(3)
        name = path.lstrip("/")
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
        if not stream:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(0, len(body), 65536):
            self.wfile.write(body[i:i + 65536])

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET

    def get_request(self):
        # The handshake runs in the handler's thread, on its first read,
        # so that a client that refuses our certificate blocks no one.
        sock, addr = self.socket.accept()
        return self.ctx.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # handshakes refused and connections dropped by the tests


def main():
    root, cert, key = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.ctx = ctx
    srv.root = root
    os.write(1, b"%d\n" % srv.server_address[1])  # one write, then quiet
    srv.serve_forever()


if __name__ == "__main__":
    main()
