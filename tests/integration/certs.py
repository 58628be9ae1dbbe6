"""certs: the certificates the TLS tests need, made at test time with the
openssl command line (never checked in).

    c = certs.make(dir)      # or certs.make(dir, hosts=["127.0.0.1", "localhost"])
    c.ca, c.server_cert, c.server_key, c.client_cert, c.client_key, ...

What it makes (RSA 2048, SHA-256):
  ca              the test CA (self-signed)
  server          signed by ca, SAN = hosts (IP and DNS entries)
  client          signed by ca, CN=kstretch-test-client, OU=rack-us-a (clientAuth)
  expired         signed by ca, SAN = hosts, valid for a day that is over
  wronghost       signed by ca, SAN = wrong.example.invalid only
  other_ca        another CA, and other_client: a client certificate it signed
  sni             signed by ca, SAN = *.kafka.test (for SNI names), plus hosts

Each pair has .pem (certificate followed by its CA: a chain) and .key
(unencrypted PKCS#8), plus a Java keystore/truststore in PKCS#12 (password
"changeit") for the Java client and the brokers: c.p12("server"),
c.truststore_p12.
"""
import ipaddress
import os
import subprocess

PASSWORD = "changeit"


def _run(argv, cwd):
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.decode(errors='replace')[-2000:]}")
    return r


def _san(hosts):
    out = []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            out.append(f"IP:{h}")
        except ValueError:
            out.append(f"DNS:{h}")
    return ",".join(out)


class Certs:
    def __init__(self, d):
        self.dir = d

    def path(self, name, ext):
        return os.path.join(self.dir, f"{name}.{ext}")

    def cert(self, name):
        return self.path(name, "pem")

    def key(self, name):
        return self.path(name, "key")

    def p12(self, name):
        return self.path(name, "p12")

    @property
    def ca(self):
        return self.path("ca", "crt")

    @property
    def other_ca(self):
        return self.path("other_ca", "crt")

    @property
    def truststore_p12(self):
        return self.path("truststore", "p12")

    server_cert = property(lambda self: self.cert("server"))
    server_key = property(lambda self: self.key("server"))
    client_cert = property(lambda self: self.cert("client"))
    client_key = property(lambda self: self.key("client"))


def _ca(d, name, subject):
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
          "-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.crt",
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)


def _leaf(d, name, ca, subject, san=None, client=False, expired=False):
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", subject,
          "-keyout", f"{name}.key", "-out", f"{name}.csr"], d)
    ext = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment",
           "extendedKeyUsage=" + ("clientAuth" if client else "serverAuth,clientAuth")]
    if san:
        ext.append(f"subjectAltName={san}")
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("\n".join(ext) + "\n")
    argv = ["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt"]
    if expired:
        _backdate(d, name, ca)  # x509 -req sets no start date: the ca command does
    else:
        _run(argv + ["-days", "30"], d)
    with open(os.path.join(d, f"{name}.pem"), "w") as out:
        for part in (f"{name}.crt", f"{ca}.crt"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())
    _run(["openssl", "pkcs12", "-export", "-in", f"{name}.pem", "-inkey", f"{name}.key", "-name", name,
          "-passout", f"pass:{PASSWORD}", "-out", f"{name}.p12"], d)


def _backdate(d, name, ca):
    """Re-signs name's request with a validity that is over (openssl ca with explicit dates)."""
    db = os.path.join(d, f"{ca}-db")
    os.makedirs(os.path.join(db, "new"), exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("1000\n")
    conf = os.path.join(d, f"{ca}-ca.cnf")
    with open(conf, "w") as f:
        f.write(f"""[ ca ]
default_ca = test
[ test ]
dir = {db}
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
default_md = sha256
policy = any
copy_extensions = none
[ any ]
commonName = supplied
""")
    _run(["openssl", "ca", "-batch", "-config", conf, "-cert", f"{ca}.crt", "-keyfile", f"{ca}.key",
          "-in", f"{name}.csr", "-out", f"{name}.crt", "-extfile", f"{name}.ext", "-notext",
          "-startdate", "20200101000000Z", "-enddate", "20200102000000Z"], d)


def make(d, hosts=("127.0.0.1", "localhost")):
    """Makes every certificate in directory d (created if needed); returns a Certs."""
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "done")):
        return Certs(d)
    san = _san(hosts)
    _ca(d, "ca", "/CN=kstretch test CA")
    _ca(d, "other_ca", "/CN=another CA")
    _leaf(d, "server", "ca", "/CN=kstretch-test-server", san=san)
    _leaf(d, "client", "ca", "/CN=kstretch-test-client/OU=rack-us-a", client=True)
    _leaf(d, "expired", "ca", "/CN=expired-server", san=san, expired=True)
    _leaf(d, "wronghost", "ca", "/CN=wrong-host", san="DNS:wrong.example.invalid")
    _leaf(d, "other_client", "other_ca", "/CN=stranger", client=True)
    _leaf(d, "sni", "ca", "/CN=kafka.test", san=_san(list(hosts) + ["*.kafka.test", "kafka.test"]))
    _run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.crt", "-storetype", "PKCS12",
          "-keystore", "truststore.p12", "-storepass", PASSWORD], d)
    open(os.path.join(d, "done"), "w").close()
    return Certs(d)


if __name__ == "__main__":
    import sys
    print(make(sys.argv[1]).dir)
