"""Prints a TCP port on 127.0.0.1 that nothing listens on, taken below the kernel's ephemeral
range: a port from that range (what binding port 0 gives) can be taken by any outgoing
connection (to PostgreSQL, from the load) between the moment it is chosen and the moment
the process it is for binds it, which the cluster tests met as "Address already in use"."""
import random
import socket

with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
    ephemeral_low = int(ranges.read().split()[0])
low, high = 10000, max(ephemeral_low, 10001)
# The failover tests' Patroni cluster (scripts/ha-cluster.sh) has 25400-25499 to itself: its
# nodes stop and start while other suites run beside it, and must find their ports free.
reserved = range(25400, 25500)
for _ in range(1000):
    port = random.randrange(low, high)
    if port in reserved:
        continue
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        probe.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
