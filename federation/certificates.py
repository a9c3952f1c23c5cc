"""TLS certificates and SuperNode authentication keys for a Flower deployment.

Flower's SuperLink serves its Fleet, Control and Runtime APIs over TLS when it is given a CA
certificate, a server certificate and the server's private key (``--ssl-ca-certfile``,
``--ssl-certfile``, ``--ssl-keyfile``); a SuperNode and the ``flwr`` CLI verify the server with
the CA certificate (``--root-certificates`` / ``root-certificates``). With
``--enable-supernode-auth`` the SuperLink only accepts SuperNodes whose public key was
registered (``flwr supernode register``); each SuperNode signs with its private key
(``--auth-supernode-private-key``). Keys are NIST P-384 elliptic-curve keys in OpenSSH format,
the format ``ssh-keygen -t ecdsa -b 384`` writes and Flower reads.

``generate_credentials`` writes all of it for a test deployment, using the ``cryptography``
package Flower already depends on. It is a test CA: for a real deployment, have the server
certificate signed by the CA your organisation trusts and keep ``ca.key`` offline.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from envs.atomic import write_atomic

__all__ = [
    "DEFAULT_HOSTS",
    "Credentials",
    "NodeKeys",
    "generate_credentials",
    "load_credentials",
]

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
"""Names and addresses the test server certificate is valid for (its subject alternative
names); add the SuperLink host's name or address for a deployment across machines."""

_VALID_DAYS = 365


@dataclass(frozen=True)
class NodeKeys:
    """One SuperNode's authentication key pair (OpenSSH format, P-384)."""

    name: str
    private_key: Path
    public_key: Path


@dataclass(frozen=True)
class Credentials:
    """Paths of the files ``generate_credentials`` wrote (all PEM / OpenSSH text)."""

    folder: Path
    ca_certificate: Path
    ca_key: Path
    server_certificate: Path
    server_key: Path
    nodes: dict[str, NodeKeys] = field(default_factory=dict)

    def node(self, name: str) -> NodeKeys:
        """The key pair of node ``name``; KeyError naming the nodes there are."""
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(
                f"no keys for node {name!r} in {self.folder}; there are {sorted(self.nodes)}"
            ) from None


def _private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _subject_alternative_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _write_private(path: Path, data: bytes) -> None:
    write_atomic(path, data)
    path.chmod(0o600)


def _certificate_authority(
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinfactory test CA")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA384())
    )
    return key, certificate


def _server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate,
    hosts: Sequence[str],
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(_subject_alternative_names(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA384())
    )
    return key, certificate


def _node_keys(folder: Path, name: str) -> NodeKeys:
    key = ec.generate_private_key(ec.SECP384R1())
    private = folder / f"{name}.key"
    public = folder / f"{name}.pub"
    _write_private(
        private,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    write_atomic(
        public,
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + f" {name}\n".encode(),
    )
    return NodeKeys(name=name, private_key=private, public_key=public)


def generate_credentials(
    folder: str | Path,
    node_names: Sequence[str],
    hosts: Sequence[str] = DEFAULT_HOSTS,
) -> Credentials:
    """Write a test CA (``ca.crt``, ``ca.key``), a SuperLink certificate signed by it for
    ``hosts`` (``server.pem``, ``server.key``) and one authentication key pair per node
    (``<name>.key``, ``<name>.pub``) into ``folder``; private keys are mode 0600.

    Existing files are replaced: every call makes a new CA, so hand the new ``ca.crt`` to
    every SuperNode."""
    if not hosts:
        raise ValueError("hosts is empty: the server certificate needs at least one name")
    if len(set(node_names)) != len(node_names):
        raise ValueError(f"node names repeat: {list(node_names)}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_certificate = _certificate_authority(now)
    server_key, server_certificate = _server_certificate(ca_key, ca_certificate, hosts, now)
    credentials = Credentials(
        folder=out,
        ca_certificate=out / "ca.crt",
        ca_key=out / "ca.key",
        server_certificate=out / "server.pem",
        server_key=out / "server.key",
        nodes={name: _node_keys(out, name) for name in node_names},
    )
    _write_private(credentials.ca_key, _private_key_pem(ca_key))
    write_atomic(
        credentials.ca_certificate, ca_certificate.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(credentials.server_key, _private_key_pem(server_key))
    write_atomic(
        credentials.server_certificate,
        server_certificate.public_bytes(serialization.Encoding.PEM),
    )
    return credentials


def load_credentials(folder: str | Path) -> Credentials:
    """The credentials ``generate_credentials`` wrote into ``folder`` (nodes found by their
    ``.pub`` files); FileNotFoundError naming the missing file."""
    out = Path(folder)
    credentials = Credentials(
        folder=out,
        ca_certificate=out / "ca.crt",
        ca_key=out / "ca.key",
        server_certificate=out / "server.pem",
        server_key=out / "server.key",
        nodes={
            public.stem: NodeKeys(public.stem, public.with_suffix(".key"), public)
            for public in sorted(out.glob("*.pub"))
        },
    )
    for path in (
        credentials.ca_certificate,
        credentials.server_certificate,
        credentials.server_key,
        *(keys.private_key for keys in credentials.nodes.values()),
    ):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; write the credentials with "
                f"`python scripts/federate.py certs --out {out}`"
            )
    return credentials
