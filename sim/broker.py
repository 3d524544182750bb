"""A private mosquitto broker on a free 127.0.0.1 port: for the simulator, tests and benchmarks.

Started from a generated configuration (anonymous, or password file + ACL,
optionally TLS), stopped by PID, its files removed. ``set_tcp_nodelay`` is on:
without it every relay hop can cost Nagle's ~40 ms. The broker runs under
``sim.lifeline``: it dies with the process that started it, even one that is
SIGKILLed, and never keeps its port for a parent that is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UsageError
from sim.lifeline import Supervised

_LOGGER = logging.getLogger(__name__)

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    return shutil.which("mosquitto", path=SEARCH_PATH)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TlsFiles:
    """Paths of a CA certificate and a server certificate/key signed by it."""

    ca: Path
    cert: Path
    key: Path
    require_certificate: bool = False  # mutual TLS: the certificate's CN becomes the user name


@dataclass
class BrokerSpec:
    """What the generated mosquitto.conf says."""

    users: dict[str, str] = field(default_factory=dict)  # name -> password
    acl: str | None = None  # the ACL file's text; with users, anonymous access is off
    tls: TlsFiles | None = None
    persistence: bool = False
    extra: str = ""


class Mosquitto:
    """A running mosquitto process owned by this object."""

    def __init__(self, spec: BrokerSpec | None = None, port: int | None = None) -> None:
        self.spec = spec or BrokerSpec()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="centinela-mosquitto-"))
        self.proc: Supervised | None = None
        self.log_path = self._dir / "mosquitto.log"

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.spec.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        spec = self.spec
        lines = [
            f"listener {self.port} 127.0.0.1",
            "set_tcp_nodelay true",
            "user root" if os.geteuid() == 0 else "",
            f"persistence {'true' if spec.persistence else 'false'}",
            f"persistence_location {self._dir}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_inflight_messages 100",
            "max_queued_messages 100000",
        ]
        if spec.users:
            passwd = self._dir / "passwd"
            passwd.write_text("")
            for name, password in spec.users.items():
                subprocess.run(
                    [
                        shutil.which("mosquitto_passwd", path=SEARCH_PATH) or "mosquitto_passwd",
                        "-b",
                        str(passwd),
                        name,
                        password,
                    ],
                    check=True,
                    capture_output=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        elif not (spec.tls and spec.tls.require_certificate):
            lines.append("allow_anonymous true")
        if spec.acl is not None:
            acl = self._dir / "acl"
            acl.write_text(spec.acl)
            lines.append(f"acl_file {acl}")
        if spec.tls:
            lines += [
                f"cafile {spec.tls.ca}",
                f"certfile {spec.tls.cert}",
                f"keyfile {spec.tls.key}",
            ]
            if spec.tls.require_certificate:
                lines += ["require_certificate true", "use_identity_as_username true"]
        lines.append(spec.extra)
        conf = self._dir / "mosquitto.conf"
        conf.write_text("\n".join(line for line in lines if line) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        binary = find_mosquitto()
        if binary is None:
            raise UsageError("mosquitto is not installed (make setup installs it)")
        conf = self._dir / "mosquitto.conf"
        if not conf.exists():
            conf = self._write_config()
        # Started from any thread (the simulator starts it from a worker thread): the
        # lifeline, not a parent-death signal, ties it to this process (sim/lifeline.py).
        self.proc = Supervised(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(
                    errors="replace"
                )
                log = self.log_path.read_text() if self.log_path.exists() else ""
                raise RuntimeError(f"mosquitto exited at start: {err.strip()} {log.strip()[-500:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                _LOGGER.debug("mosquitto pid %d listening on %s", self.proc.pid, self.url)
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the broker by its PID (the port and files stay for a restart)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the broker and remove its files."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_ca(
    directory: Path,
    *,
    server_names: tuple[str, ...] = ("localhost",),
    clients: tuple[str, ...] = (),
) -> TlsFiles:
    """A throwaway CA plus a server certificate for 127.0.0.1 (and client certificates)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey, *, private: bool) -> None:
        if private:  # a client's key is owner-only (the panel and hub refuse others);
            path.touch(mode=0o600)  # the broker's own may need to be read by its user
            path.chmod(0o600)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "centinela test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(name: str, *, server: bool) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
            sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key_path, key, private=not server)
        return cert_path, key_path

    cert, key = issue("server", server=True)
    for client in clients:
        issue(client, server=False)
    return TlsFiles(ca=directory / "ca.pem", cert=cert, key=key)
