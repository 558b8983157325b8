#!/usr/bin/env python3
"""The upload page under load, for each binary given: `serve --simulate`, then
1. 1,000 connections that each send half a request header and then nothing: the server's
   resident memory and open descriptors 2 s later, whether a real page request is still
   answered (and how fast, the median of 5), its peak memory, and the descriptors again 12 s
   later;
2. 50 uploads of 20 MiB at once (bytes that are not a spreadsheet, so each plan is refused):
   the server's peak resident memory, the answers by status, the time, and what stayed on disk.
Usage: benches/serve_load.py BINARY [BINARY...]   (Linux: reads /proc)"""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HALF_OPEN = 1000
PAGE_TRIES = 5
UPLOADS = 50
UPLOAD_BYTES = 20 * 1024 * 1024


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def page(address, cookie, timeout=5.0):
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection(*address, timeout=timeout)
        connection.request("GET", "/", headers={"Cookie": cookie})
        status = connection.getresponse().status
        connection.close()
        return status, time.monotonic() - started
    except OSError as error:
        return f"no answer ({error.__class__.__name__})", time.monotonic() - started


def upload(address, cookie, body, results):
    boundary = "loadtestboundary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n"
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"until\"\r\n\r\n8h\r\n--{boundary}--\r\n".encode()
    try:
        connection = http.client.HTTPConnection(*address, timeout=120)
        connection.request(
            "POST",
            "/plan",
            body=head + body + tail,
            headers={
                "Cookie": cookie,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        results.append(connection.getresponse().status)
        connection.close()
    except OSError as error:
        results.append(error.__class__.__name__)


def disk(folder):
    total, files, modes = 0, 0, set()
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            total += os.path.getsize(path)
            files += 1
            modes.add(oct(os.stat(path).st_mode & 0o777))
    return total, files, sorted(modes)


def measure(binary):
    workdir = tempfile.mkdtemp()
    server = subprocess.Popen(
        [binary, "serve", "--simulate", "--workdir", workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip().removeprefix("url: ")
        parsed = urllib.parse.urlparse(url)
        address = (parsed.hostname, parsed.port)
        connection = http.client.HTTPConnection(*address, timeout=5)
        connection.request("GET", parsed.path + "?" + parsed.query)
        cookie = connection.getresponse().getheader("Set-Cookie").split(";")[0]
        connection.close()
        print(f"{binary}:")
        print(f"  idle: {proc_status(server.pid, 'VmRSS') / 1024:.1f} MiB, {descriptors(server.pid)} descriptors")

        held = []
        for _ in range(HALF_OPEN):
            sock = socket.create_connection(address)
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\nX-Slow: ".encode())
            held.append(sock)
        time.sleep(2)
        tries = [page(address, cookie) for _ in range(PAGE_TRIES)]
        statuses = sorted({str(status) for status, _ in tries})
        took = sorted(took for _, took in tries)[PAGE_TRIES // 2]
        print(
            f"  {HALF_OPEN} half-open connections, 2 s on: {proc_status(server.pid, 'VmRSS') / 1024:.1f} MiB "
            f"(peak {proc_status(server.pid, 'VmHWM') / 1024:.1f} MiB), {descriptors(server.pid)} descriptors; "
            f"{PAGE_TRIES} page requests: {', '.join(statuses)}, median {took:.3f} s"
        )
        time.sleep(12)
        status, took = page(address, cookie)
        print(
            f"  14 s on: {descriptors(server.pid)} descriptors; a page request: {status} in {took:.2f} s"
        )
        for sock in held:
            sock.close()

        body = os.urandom(UPLOAD_BYTES)
        results = []
        threads = [
            threading.Thread(target=upload, args=(address, cookie, body, results))
            for _ in range(UPLOADS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
        counts = {}
        for result in results:
            counts[result] = counts.get(result, 0) + 1
        size, files, modes = disk(workdir)
        print(
            f"  {UPLOADS} uploads of 20 MiB at once: answers {counts} in {took:.1f} s, peak "
            f"{proc_status(server.pid, 'VmHWM') / 1024:.1f} MiB; on disk after: {size / 1048576:.1f} MiB "
            f"in {files} files, modes {modes}"
        )
    finally:
        server.kill()
        server.wait()


for binary in sys.argv[1:]:
    measure(binary)
