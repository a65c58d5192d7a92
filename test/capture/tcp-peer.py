#!/usr/bin/env python3
"""Tiny TCP peers for the capture fixtures (test/capture/make-fixtures.sh).

server PORT SECONDS [--v6]  accept for SECONDS (IPv6 only with --v6); per connection: read a request, answer, wait for the peer's close
client HOST PORT [--connect-timeout S] [--read-timeout S] [--linger0] [--request-bytes N]
                         connect, send a request, read the answer, close (--linger0: close with a RST;
                         --request-bytes: a request of N bytes, full-size segments)
"""
import socket
import struct
import sys
import threading
import time


def arg(name, default):
    if name in sys.argv:
        return float(sys.argv[sys.argv.index(name) + 1])
    return default


def serve(port, seconds):
    s = socket.socket(socket.AF_INET6 if '--v6' in sys.argv else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if '--v6' in sys.argv:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(('::' if '--v6' in sys.argv else '0.0.0.0', port))
    s.listen(16)
    deadline = time.time() + seconds

    def handle(c):
        c.settimeout(3)
        try:
            if c.recv(200):
                c.sendall(b'HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n')
            while c.recv(200):
                pass
        except OSError:
            pass
        c.close()

    while time.time() < deadline:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            c, _ = s.accept()
        except OSError:
            continue
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def client(host, port):
    try:
        c = socket.create_connection((host, port), timeout=arg('--connect-timeout', 3))
    except OSError as e:
        print(f'connect: {e}')
        return
    c.settimeout(arg('--read-timeout', 2))
    try:
        n = int(arg('--request-bytes', 0))
        c.sendall(b'GET / HTTP/1.0\r\n' + (b'X: ' + b'a' * (n - 23) + b'\r\n' if n > 23 else b'') + b'\r\n')
        print('answer:', c.recv(200)[:15])
    except OSError as e:
        print(f'read: {e}')
    if '--linger0' in sys.argv:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()


if __name__ == '__main__':
    if sys.argv[1] == 'server':
        serve(int(sys.argv[2]), float(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]))
