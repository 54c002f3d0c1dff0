"""nginx/entrypoint.sh, from the repository, on the host's nginx (paths in a temporary directory) as
the image runs it: environment validation and certificate handling."""

from __future__ import annotations

import datetime
import hashlib
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.support.nginx import NginxRun, request, run_entrypoint, served_cert_sha256

pytestmark = pytest.mark.integration

TENANT = "acme.loomworks.app"


def served(run: NginxRun) -> str:
    return served_cert_sha256(run.https_port, TENANT)


def file_sha256(pem: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.read_text())).hexdigest()


DEFAULT_NAMES = ("loomworks.app", "*.loomworks.app")


def pem(kind: str, body: str) -> str:
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def make_cert(dir_: Path, *, names: tuple[str, ...] = DEFAULT_NAMES,
              expired: bool = False) -> tuple[Path, Path]:
    """A self-signed EC pair in ``dir_``; ``expired`` makes one that ended yesterday."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    dir_.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    start, end = (now - datetime.timedelta(days=60), now - datetime.timedelta(days=1)) if expired \
        else (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=90))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = dir_ / "fullchain.pem", dir_ / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def error_line(r: subprocess.CompletedProcess) -> str:
    assert r.returncode != 0, f"expected a failure, got rc=0\n{r.stderr}"
    lines = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, r.stderr
    return lines[0]


# (variable, bad value, what the error line says after the variable's name)
BAD_ENV = [*(("LOOMWORKS_DOMAIN", v, "must be a DNS name") for v in ("bad_domain!", "a..b")),
           ("ODOO_HOST", "odoo host", "must be a DNS name"), ("ODOO_HTTP_PORT", "70000", "must be <= 65535"),
           ("ODOO_WS_PORT", "ws", "must be a non-negative integer"),
           ("ALLOW_DATABASE_MANAGER", "maybe", "must be a boolean"),
           ("NGINX_HTTPS_LISTEN", "https", "must be PORT or IPV4:PORT"), ("HTTPS_PORT", "0", "must be >= 1"),
           ("RESOLVER", "dns.example", "must be space-separated IP addresses"),
           *(("NGINX_STATIC_CACHE_SIZE", v, "must be a size such as 64m or 1g")
             for v in ("lots", "0m", "64 m", "65536", "64m;")),
           *(("NGINX_STATIC_CACHE_VALID", v, "must be a duration such as 30s") for v in ("10 minutes", "0s"))]


@pytest.mark.parametrize(("var", "value", "expected"), BAD_ENV)
def test_bad_environment_fails_with_one_clear_line(make_nginx, var: str, value: str, expected: str) -> None:
    run = make_nginx(**{var: value})
    line = error_line(run_entrypoint(run.env, "check"))
    assert f"{var} {expected}" in line, line
    assert not (run.root / "conf" / "nginx.conf").exists()  # nothing rendered


@pytest.mark.parametrize(("size", "valid"), [("1g", "1h"), ("512K", "30s"), ("8M", "2d")])
def test_static_cache_settings_reach_the_configuration(make_nginx, size: str, valid: str) -> None:
    run = make_nginx(NGINX_STATIC_CACHE_SIZE=size, NGINX_STATIC_CACHE_VALID=valid)
    r = run_entrypoint(run.env, "check")
    assert r.returncode == 0, r.stderr
    conf = (run.root / "conf" / "nginx.conf").read_text()
    assert f"max_size={size} " in conf
    assert f"{run.root}/cache/static " in conf  # under the writable LW_CACHE_DIR
    assert f"proxy_cache_valid 200 {valid};" in (run.root / "conf" / "snippets" / "odoo.conf").read_text()


def test_static_cache_defaults(make_nginx) -> None:
    run = make_nginx()
    assert run_entrypoint(run.env, "check").returncode == 0
    assert "max_size=64m " in (run.root / "conf" / "nginx.conf").read_text()
    assert "proxy_cache_valid 200 10m;" in (run.root / "conf" / "snippets" / "odoo.conf").read_text()


def test_deprecated_public_https_port_still_works_with_one_warning(make_nginx) -> None:
    run = make_nginx(PUBLIC_HTTPS_PORT="8443")
    r = run_entrypoint(run.env, "check")
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "deprecated" in ln]
    assert warnings == ["entrypoint: warning: PUBLIC_HTTPS_PORT is deprecated; use HTTPS_PORT"]
    assert "return 308 https://$host:8443$request_uri;" in (run.root / "conf" / "nginx.conf").read_text()


def test_domain_is_case_insensitive(make_nginx) -> None:
    run = make_nginx(LOOMWORKS_DOMAIN="LoomWorks.APP").start()
    assert request(run.https_port, TENANT, "/nginx-health", context=run.tls_context()).status == 200


def test_self_signed_certificate_is_generated_once_and_reused(make_nginx) -> None:
    run = make_nginx()
    run.start()
    generated = run.root / "self-signed" / "fullchain.pem"
    first = served(run)
    assert first == file_sha256(generated)
    assert (run.root / "self-signed" / "privkey.pem").stat().st_mode & 0o077 == 0
    # the generated certificate covers the bare domain and any tenant (verified TLS)
    for host in ("loomworks.app", TENANT, "bigco.loomworks.app"):
        assert request(run.https_port, host, "/nginx-health", context=run.tls_context()).status == 200
    run.stop()
    run.start()
    assert served(run) == first and "reusing self-signed certificate" in run.log()


def test_self_signed_certificate_is_replaced_when_the_domain_changes(make_nginx) -> None:
    run = make_nginx()
    assert run_entrypoint(run.env, "check").returncode == 0
    before = file_sha256(run.root / "self-signed" / "fullchain.pem")
    run.env["LOOMWORKS_DOMAIN"] = "example.org"
    r = run_entrypoint(run.env, "check")
    assert r.returncode == 0, r.stderr
    assert "generated a self-signed certificate for example.org" in r.stderr
    assert file_sha256(run.root / "self-signed" / "fullchain.pem") != before


def test_mounted_certificate_is_served(make_nginx) -> None:
    run = make_nginx()
    cert, _ = make_cert(run.root / "certs")
    run.start()
    assert served(run) == file_sha256(cert) and "using mounted certificate" in run.log()
    assert not (run.root / "self-signed" / "fullchain.pem").exists()


def test_unwritable_self_signed_directory_is_a_clear_error(make_nginx) -> None:
    run = make_nginx(LW_SELF_SIGNED_DIR="/proc/lwtest-no-such-dir")
    assert "self-signed certificate directory missing or not writable" in error_line(
        run_entrypoint(run.env, "check"))


BAD_CERTS = {  # what is wrong with the mounted pair -> what the one error line says
    "garbage": "fullchain.pem: not a PEM certificate",
    "mismatch": "private key does not match the certificate",
    "wrong-domain": "certificate is not valid for LOOMWORKS_DOMAIN=loomworks.app",
    "expired": "certificate expired on",
    "key-only": "fullchain.pem: missing (",
    "bad-key": "privkey.pem: not an unencrypted PEM private key",
}


@pytest.mark.parametrize("case", BAD_CERTS)
def test_bad_mounted_certificate_fails_with_one_clear_line(make_nginx, tmp_path: Path, case: str) -> None:
    run = make_nginx()
    certs = run.root / "certs"
    make_cert(certs, names=("other.example",) if case == "wrong-domain" else DEFAULT_NAMES,
              expired=case == "expired")
    if case == "garbage":
        (certs / "fullchain.pem").write_text(pem("CERTIFICATE", "not base64"))
    elif case == "mismatch":
        (certs / "privkey.pem").write_bytes(make_cert(tmp_path / "other")[1].read_bytes())
    elif case == "key-only":
        (certs / "fullchain.pem").unlink()
    elif case == "bad-key":
        (certs / "privkey.pem").write_text(pem("PRIVATE KEY", "secret-material"))
    r = run_entrypoint(run.env, "check")
    line = error_line(r)
    assert BAD_CERTS[case] in line, line
    assert "secret-material" not in r.stderr + r.stdout
    assert not (run.root / "self-signed" / "fullchain.pem").exists()  # no silent fallback
