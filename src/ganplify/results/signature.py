"""Signing a results folder's manifest with an SSH key (`ssh-keygen -Y sign`), and saying who
signed it.

Checksums catch accidents and naive edits; whoever can edit a table can also rewrite
MANIFEST.sha256. A signature binds the manifest, and so every file it lists, to a key: a
collaborator checks it against the keys they trust (an OpenSSH allowed-signers file).
OpenSSH does the cryptography; this module only calls it and reads the signer's public key.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ganplify.results import layout
from ganplify.results.io import ResultsError, atomic_write_bytes

NAMESPACE = "ganplify-manifest"  # ssh-keygen -n: a signature made for anything else fails


@dataclass(frozen=True)
class Signer:
    """Who signed a manifest: the key's type and SHA256 fingerprint, and the principals of an
    allowed-signers file that hold it (empty when none was given)."""

    key_type: str
    fingerprint: str
    principals: tuple[str, ...] = ()


def _ssh_keygen() -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise ResultsError("ssh-keygen not found: install OpenSSH (Debian: openssh-client)")
    return exe


def _run(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([_ssh_keygen(), *args], input=stdin, capture_output=True, check=False)


def sign(root: str | Path, key: str | Path) -> Signer:
    """Sign MANIFEST.sha256 with a private key; writes MANIFEST.sha256.sig."""
    root, key = Path(root), Path(key)
    manifest = root / layout.MANIFEST
    if not manifest.is_file():
        raise ResultsError(f"{manifest}: missing; run the workflow to the end first")
    if not key.is_file():
        raise ResultsError(f"{key}: no such key file (an SSH private key, e.g. ~/.ssh/id_ed25519)")
    done = _run(["-Y", "sign", "-q", "-f", str(key), "-n", NAMESPACE], manifest.read_bytes())
    if done.returncode != 0:
        raise ResultsError(f"{key}: ssh-keygen could not sign: {done.stderr.decode().strip()}")
    atomic_write_bytes(root / layout.SIGNATURE, done.stdout)
    return signer(root)


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    (n,) = struct.unpack(">I", blob[offset : offset + 4])
    return blob[offset + 4 : offset + 4 + n], offset + 4 + n


def _public_key(signature: bytes, path: Path) -> tuple[str, str]:
    """(key type, SHA256 fingerprint) of the key an SSHSIG signature carries."""
    lines = signature.decode(errors="replace").strip().splitlines()
    if len(lines) < 3 or "BEGIN SSH SIGNATURE" not in lines[0]:
        raise ResultsError(f"{path}: not an SSH signature (ssh-keygen -Y sign)")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
        if blob[:6] != b"SSHSIG":
            raise ValueError("no SSHSIG magic")
        key, _ = _read_string(blob, 10)  # after the magic and a uint32 version
        key_type, _ = _read_string(key, 0)
    except (ValueError, struct.error) as exc:
        raise ResultsError(f"{path}: not an SSH signature ({exc})") from None
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode().rstrip("=")
    return key_type.decode(errors="replace"), f"SHA256:{digest}"


def signer(root: str | Path, allowed_signers: str | Path | None = None) -> Signer:
    """Check MANIFEST.sha256.sig against the manifest and say who signed it.

    Without ``allowed_signers``, the signature is checked against the key it carries (it
    proves only that the holder of that key signed this manifest); with it, the key must be
    one the file allows, and its principals are returned. `ResultsError` when the signature
    is missing, malformed, or does not match.
    """
    root = Path(root)
    manifest, sig = root / layout.MANIFEST, root / layout.SIGNATURE
    if not sig.is_file():
        raise ResultsError(f"{sig}: missing; the folder is not signed (ganplify sign)")
    if not manifest.is_file():
        raise ResultsError(f"{manifest}: missing")
    key_type, fingerprint = _public_key(sig.read_bytes(), sig)
    data = manifest.read_bytes()
    check = _run(["-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(sig)], data)
    if check.returncode != 0:
        raise ResultsError(
            f"{sig}: does not sign this {layout.MANIFEST} (changed after signing?): "
            f"{check.stderr.decode().strip() or check.stdout.decode().strip()}"
        )
    if allowed_signers is None:
        return Signer(key_type, fingerprint)
    allowed = Path(allowed_signers)
    if not allowed.is_file():
        raise ResultsError(f"{allowed}: no such allowed-signers file")
    found = _run(["-Y", "find-principals", "-s", str(sig), "-f", str(allowed)], b"")
    principals = tuple(found.stdout.decode().split()) if found.returncode == 0 else ()
    if not principals:
        raise ResultsError(f"{sig}: signed by {fingerprint}, a key {allowed} does not allow")
    ok = _run(
        ["-Y", "verify", "-f", str(allowed), "-I", principals[0], "-n", NAMESPACE, "-s", str(sig)],
        data,
    )
    if ok.returncode != 0:
        raise ResultsError(f"{sig}: {ok.stderr.decode().strip() or ok.stdout.decode().strip()}")
    return Signer(key_type, fingerprint, principals)
