"""Certificates for the TLS tests, made with Python's cryptography package
(Debian python3-cryptography): a CA, a server certificate for 127.0.0.1
signed by it, one already expired, and client certificates from the CA and
from another CA."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_key():
    return ec.generate_private_key(ec.SECP256R1())


def make_cert(name, key, issuer_name, issuer_key, ca=False, days=(-1, 30), ip=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def write_pem(path, cert=None, key=None):
    with open(path, "wb") as f:
        if cert is not None:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    os.chmod(path, 0o600)


def make_pki(d):
    """Writes into directory `d` (a pathlib.Path): ca.pem; server, expired,
    client and stranger, each as NAME.pem and NAME.key; returns `d`."""
    ca_key, other_key = make_key(), make_key()
    ca = make_cert("mqd test CA", ca_key, "mqd test CA", ca_key, ca=True)
    other = make_cert("another CA", other_key, "another CA", other_key, ca=True)
    write_pem(d / "ca.pem", ca)
    for name, issuer, issuer_key, days in (("server", "mqd test CA", ca_key, (-1, 30)),
                                           ("expired", "mqd test CA", ca_key, (-10, -1)),
                                           ("client", "mqd test CA", ca_key, (-1, 30)),
                                           ("stranger", "another CA", other_key, (-1, 30))):
        key = make_key()
        cert = make_cert(name, key, issuer, issuer_key, days=days,
                         ip="127.0.0.1" if name in ("server", "expired") else None)
        write_pem(d / f"{name}.pem", cert)
        write_pem(d / f"{name}.key", key=key)
    return d
