"""The IPv4 stack against Linux in a test-made namespace: ping, UDP echo over many flows, ICMP errors,
hostile frames dropped and counted while the guest keeps answering."""
import json
import os
import re
import sys

from netns import Guest, NetNS
from shoal_qemu import image

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_IP, HOST_IP = "10.0.2.15", "10.0.2.1"
STATS_PORT = 9999

def echo_guest(ns, smp, machine):
    g = Guest(ns, image("echo"), smp=smp, machine=machine,
              cmdline=f"ip={GUEST_IP}/24 gw={HOST_IP} -- -s {STATS_PORT}")
    if not g.wait_for("echo: ready, TCP and UDP port 7"):
        g.kill()
        raise AssertionError(f"echo did not come up; console:\n{g.tail()}")
    return g

def stats(ns):
    return ns.echo_stats(GUEST_IP, STATS_PORT)

def ping(ns, *args):
    r = ns.run("ping", "-n", "-W", "3", *args, GUEST_IP, check=False, timeout=90)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, f"ping said: {r.stdout[-500:]} {r.stderr[-300:]}"
    return int(m.group(1)), int(m.group(2)), r.stdout

def guest_mac(g):
    m = re.search(r"mac ([0-9a-f:]{17})", g.console)
    assert m, "no MAC on the console"
    return m.group(1)

def ping_and_udp(machine, smp, queues):
    def run():
        with NetNS(queues=queues, addr=f"{HOST_IP}/24") as ns:
            g = echo_guest(ns, smp, machine)
            try:
                sent, got, out = ping(ns, "-c", "20", "-i", "0.01")
                assert got == sent, f"ping lost {sent - got} of {sent}:\n{out[-400:]}"
                sent, got, out = ping(ns, "-c", "3", "-i", "0.2", "-s", "20000")
                assert got == sent, f"large ping (fragmented both ways) lost {sent - got} of {sent}:\n{out[-400:]}"
                sent, got, out = ping(ns, "-f", "-c", "500")
                assert got >= sent * 0.98, f"flood ping: {got} of {sent} answered:\n{out[-400:]}"
                r = ns.run(sys.executable, os.path.join(HERE, "udp_client.py"), GUEST_IP, "7", "--flows", "32",
                           "--count", "40", check=False)
                res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
                assert res.get("missing") == 0 and res.get("bad") == 0, f"udp: {r.stdout} {r.stderr[-300:]}"
                st = stats(ns)
                busy = [k for k, v in st.items() if k.startswith("shard") and v > 0]
                print(f"  udp {res}; shards with UDP work: {busy}")
                if smp > 1:
                    assert len(busy) > 1, f"only {busy} handled UDP flows: {st}"
            finally:
                g.kill()
    return run

def icmp_errors():
    """An unbound UDP port answers port unreachable, which Linux turns into ECONNREFUSED."""
    with NetNS(addr=f"{HOST_IP}/24") as ns:
        g = echo_guest(ns, 1, "microvm")
        try:
            code = ("import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3); "
                    f"s.connect(('{GUEST_IP}', 9)); s.send(b'x')\n"
                    "try:\n    s.recv(10); print('answer')\nexcept ConnectionRefusedError:\n    print('refused')\n"
                    "except socket.timeout:\n    print('silence')")
            r = ns.run(sys.executable, "-c", code, check=False)
            assert r.stdout.strip() == "refused", f"expected ICMP port unreachable, got {r.stdout} {r.stderr[-300:]}"
            assert stats(ns)["udp_no_port"] >= 1
        finally:
            g.kill()

def hostile_frames(machine):
    def run():
        with NetNS(addr=f"{HOST_IP}/24") as ns:
            g = echo_guest(ns, 2, machine)
            try:
                sent, got, _ = ping(ns, "-c", "2", "-i", "0.2")   # the guest knows our MAC from here on
                before = stats(ns)
                r = ns.run(sys.executable, os.path.join(HERE, "hostile_frames.py"), ns.tap, guest_mac(g), GUEST_IP,
                           HOST_IP, check=False)
                assert r.returncode == 0, f"sender failed: {r.stderr[-500:]}"
                sent, got, out = ping(ns, "-c", "5", "-i", "0.2")
                assert got == sent, f"the guest stopped answering after hostile frames:\n{out[-300:]}\n{g.tail()}"
                after = stats(ns)
                d = {k: after[k] - before.get(k, 0) for k in after}
                expect = {"ip_bad_checksum": 5, "ip_bad_header": 25, "udp_bad": 10, "icmp_bad": 10,
                          "ip_not_ours": 5, "rx_bad_eth": 0}
                for k, n in expect.items():
                    assert d[k] >= n, f"{k} rose by {d[k]}, expected at least {n}: {d}"
                assert d["no_memory"] == 0, d
                print(f"  counted: { {k: v for k, v in d.items() if v} }")
            finally:
                g.kill()
    return run

def dhcp_from_dnsmasq():
    """Without ip= the image asks DHCP: dnsmasq in the namespace leases an address, which then answers ping and UDP."""
    import subprocess, tempfile
    with NetNS(addr=f"{HOST_IP}/24") as ns, tempfile.TemporaryDirectory() as tmp:
        leases = os.path.join(tmp, "leases")
        d = subprocess.Popen(["ip", "netns", "exec", ns.name, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
                              f"--interface={ns.tap}", "--bind-interfaces", "--port=0", "--no-ping",
                              "--dhcp-range=10.0.2.50,10.0.2.99,255.255.255.0,10m", f"--dhcp-option=3,{HOST_IP}",
                              f"--dhcp-leasefile={leases}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        g = None
        try:
            g = Guest(ns, image("echo"), smp=2, cmdline=f"-- -s {STATS_PORT}")
            assert g.wait_for("net: DHCP lease", timeout=60), f"no lease; console:\n{g.tail()}"
            ip = re.search(r"net: DHCP lease (\d+\.\d+\.\d+\.\d+) netmask 0xffffff00 gateway 10\.0\.2\.1 for 600 s",
                           g.console)
            assert ip, f"lease line not as expected:\n{g.tail()}"
            r = ns.run("ping", "-n", "-c", "3", "-i", "0.2", "-W", "3", ip.group(1), check=False)
            assert " 0% packet loss" in r.stdout, f"the leased address does not answer:\n{r.stdout[-300:]}"
            r = ns.run(sys.executable, os.path.join(HERE, "udp_client.py"), ip.group(1), "7", "--flows", "4",
                       "--count", "10", check=False)
            assert '"missing": 0' in r.stdout and '"bad": 0' in r.stdout, r.stdout
        finally:
            if g:
                g.kill()
            d.kill()
            d.wait()

def cases():
    return [
        ("ip-microvm-smp1-ping-udp", ping_and_udp("microvm", 1, 1)),
        ("ip-microvm-smp4-ping-udp-mq4", ping_and_udp("microvm", 4, 4)),
        ("ip-pc-smp4-ping-udp-1queue", ping_and_udp("pc", 4, 1)),
        ("ip-icmp-port-unreachable", icmp_errors),
        ("ip-dhcp-from-dnsmasq", dhcp_from_dnsmasq),
        ("ip-hostile-frames-microvm", hostile_frames("microvm")),
        ("ip-hostile-frames-pc", hostile_frames("pc")),
    ]
