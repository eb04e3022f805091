"""bench/irc/nxdomain.py ADDRESS: a DNS server on ADDRESS port 53 that
answers every query at once with NXDOMAIN. ircd-hybrid looks up each
client's address before registering it; pointed at this (through a
resolv.conf of its own), its 2,000 lookups of 127.0.0.1 cost the
benchmark nothing, whatever the machine's resolver does with a burst of
them (one that drops some costs 4 s each). Runs until killed."""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    # the query's ID and first question; QR, its opcode and RD kept, RA, NXDOMAIN
    end = 12
    while end < len(q) and q[end]:
        end += 1 + q[end]
    end += 5
    if end > len(q):
        continue
    flags = 0x8000 | (q[2] & 0x79) << 8 | 0x80 | 3
    s.sendto(q[:2] + flags.to_bytes(2, "big") + b"\0\1\0\0\0\0\0\0" + q[12:end], peer)
