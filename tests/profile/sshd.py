"""A real OpenSSH server on 127.0.0.1 for the remote-profiling tests (Debian's openssh-server).

Throwaway host and user keys from ssh-keygen, its own config, port and PidFile;
stopped by the pid in the PidFile. When sshd is missing the tests fail with the
command that installs it, rather than skipping: the SSH path must be tested in CI.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
INSTALL_HINT = "sshd not found at /usr/sbin/sshd: apt-get update && apt-get install -y openssh-server"


@dataclass
class SSHServer:
    host: str  # user@127.0.0.1
    port: int
    key: Path
    pidfile: Path
    log: Path

    @property
    def ssh_options(self) -> list[str]:
        return ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def start(folder: Path) -> SSHServer:
    """Start sshd with throwaway keys in ``folder``; waits until it accepts connections."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        raise RuntimeError(INSTALL_HINT)
    folder.mkdir(parents=True, exist_ok=True)
    _keygen(folder / "host_key")
    _keygen(folder / "user_key")
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    port = _free_port()
    pidfile, log = folder / "sshd.pid", folder / "sshd.log"
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile {pidfile}\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation folder, needed when run as root
    except OSError:
        pass  # not root: sshd runs without privilege separation and only lets this user in
    subprocess.run([SSHD, "-f", str(config), "-E", str(log)], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            if pidfile.exists():
                break
        except OSError:
            time.sleep(0.05)
    else:
        raise RuntimeError(f"sshd did not start on port {port}: {log.read_text()[-500:] if log.exists() else ''}")
    return SSHServer(f"{getpass.getuser()}@127.0.0.1", port, folder / "user_key", pidfile, log)


def stop(server: SSHServer) -> None:
    try:
        os.kill(int(server.pidfile.read_text().split()[0]), signal.SIGTERM)
    except (OSError, ValueError):
        pass
