"""Three test hosts on this machine: network namespaces joined by a bridge in a namespace of
their own, each host running Debian's sshd on its own address with its own host key, root
login by a key made for the test. Nothing is added to the machine's own network namespace:
every address lives on an interface inside these namespaces, and every client (Ansible, the
load) runs in the bridge's namespace. ``remove()`` kills every process left in them, by pid
(``ip netns pids``), and deletes them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SUBNET = "10.77.17"
CLIENT_ADDRESS = f"{SUBNET}.1"
SSHD = "/usr/sbin/sshd"
SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def run(*argv: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


class Host:
    def __init__(self, index: int, namespace: str, tmp: Path) -> None:
        self.name = f"h{index}"
        self.namespace = namespace
        self.address = f"{SUBNET}.{10 + index}"
        self.dir = tmp / self.name
        self.root = self.dir / "srv"  # the deploy root: the namespaces share one filesystem

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}:4000{path}"


class Fleet:
    def __init__(self, tmp: Path, count: int = 3) -> None:
        tag = f"tw{os.getpid()}"
        self.tmp = tmp
        self.client = f"{tag}n"
        self.hosts = [Host(i, f"{tag}h{i}", tmp) for i in range(1, count + 1)]
        self.key = tmp / "id_ed25519"
        self.sshd: list[subprocess.Popen] = []

    @property
    def namespaces(self) -> list[str]:
        return [self.client] + [h.namespace for h in self.hosts]

    def create(self) -> "Fleet":
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        (self.tmp / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        run("ip", "netns", "add", self.client)
        self.ip(self.client, "link", "set", "lo", "up")
        self.ip(self.client, "link", "add", "br0", "type", "bridge")
        self.ip(self.client, "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", "br0")
        self.ip(self.client, "link", "set", "br0", "up")
        for host in self.hosts:
            self._add_host(host)
        for host in self.hosts:
            self._wait_ssh(host)
        return self

    def ip(self, namespace: str, *args: str) -> None:
        run("ip", "-n", namespace, *args)

    def _add_host(self, host: Host) -> None:
        run("ip", "netns", "add", host.namespace)
        port = f"b{host.name}"
        self.ip(self.client, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                "netns", host.namespace)
        self.ip(self.client, "link", "set", port, "master", "br0", "up")
        self.ip(host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        self.ip(host.namespace, "link", "set", "eth0", "up")
        self.ip(host.namespace, "link", "set", "lo", "up")
        host.dir.mkdir(parents=True)
        host_key = host.dir / "ssh_host_ed25519_key"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        config = host.dir / "sshd_config"
        config.write_text(SSHD_CONFIG.format(address=host.address, host_key=host_key,
                                             authorized_keys=self.tmp / "authorized_keys"))
        log = open(host.dir / "sshd.log", "w")
        self.sshd.append(subprocess.Popen(
            ["ip", "netns", "exec", host.namespace, SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log))
        log.close()

    def _wait_ssh(self, host: Host, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.run(
                ["ip", "netns", "exec", self.client, "ssh", *self.ssh_options(), f"root@{host.address}",
                 "true"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"sshd of {host.name} did not answer: {proc.stderr}\n"
                                     f"{(host.dir / 'sshd.log').read_text()}")
            time.sleep(0.3)

    def ssh_options(self) -> list[str]:
        return ["-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o",
                "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                "-o", "ConnectTimeout=10"]

    def in_client(self, argv: list[str], **kwargs) -> list[str]:
        """argv run inside the client namespace."""
        return ["ip", "netns", "exec", self.client, *argv]

    def get(self, host: Host, path: str = "/") -> str:
        """GET a host's URL from the client namespace: the body, or "ERROR ...". """
        code = ("import sys, urllib.request\n"
                "try: print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())\n"
                "except Exception as e: print('ERROR', e)")
        return run(*self.in_client([sys.executable, "-c", code, host.url(path)])).stdout.strip()

    def remove(self) -> None:
        """Kill every process in the namespaces (sshd, its sessions, nodes, ssh masters, the
        load), by pid, then delete the namespaces."""
        for _ in range(3):
            pids = self._pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        for proc in self.sshd:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=30)

    def _pids(self) -> set[int]:
        pids = set()
        for namespace in self.namespaces:
            proc = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                  text=True, stdin=subprocess.DEVNULL, timeout=30)
            pids |= {int(p) for p in proc.stdout.split()}
        return pids - {os.getpid()}
