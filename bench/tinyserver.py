#!/usr/bin/env python3
"""A tiny HTTP/1.1 server on 127.0.0.1 for the probe-rate bench: keep-alive, one fixed
200 answer to every request, an asyncio Protocol (no per-request objects). Prints its port
on stdout once it listens; stops by itself after --lifetime seconds."""
import argparse
import asyncio

BODY = b"ok\n"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        # One answer per complete request head (probes send no body).
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * n)


async def main(lifetime):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await asyncio.sleep(lifetime)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=600)
    asyncio.run(main(ap.parse_args().lifetime))
