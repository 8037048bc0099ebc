//! TLS to PostgreSQL (`sslmode` / `sslrootcert` in the connection URL, see `intelli::pg::tls`)
//! against a real server: a throwaway cluster started here with `ssl=on` and a certificate
//! signed by a CA made in the test. The shared server on 5432 is never reconfigured.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A CA and a server certificate for 127.0.0.1 and localhost, written as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA cert")
}

fn write_private(path: &Path, contents: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create key file");
    f.write_all(contents.as_bytes()).expect("write key file");
}

fn make_pki(dir: &Path) -> Pki {
    let ca = make_ca("intelli test CA");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "intelli test server");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca).expect("server cert");
    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).expect("write CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write cert");
    write_private(&pki.key, &key.serialize_pem());
    pki
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The cluster, stopped (and its directory removed) when dropped.
struct TlsServer {
    server: Option<intelli::pg::LocalServer>,
    port: u16,
    pki: Pki,
    dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }
}

fn start_tls_server() -> TlsServer {
    let dir = tempfile::tempdir().expect("tempdir");
    // Inside the cluster's directory, which start_cluster hands to the server's user: the key
    // must be readable by the server and by no one else.
    let cluster = dir.path().join("cluster");
    std::fs::create_dir_all(&cluster).expect("cluster dir");
    let pki = make_pki(&cluster);
    let port = free_port();
    let cert = format!("ssl_cert_file={}", pki.cert.display());
    let key = format!("ssl_key_file={}", pki.key.display());
    let settings = [
        ("ssl", "on"),
        cert.split_once('=').expect("setting"),
        key.split_once('=').expect("setting"),
    ];
    let server = intelli::pg::start_cluster(&cluster, port, &settings).unwrap_or_else(|e| {
        panic!(
            "this test starts its own PostgreSQL cluster: {e:#}\n\
                 Install the server binaries (Debian: apt-get install postgresql)"
        )
    });
    TlsServer {
        server: Some(server),
        port,
        pki,
        dir,
    }
}

/// Whether the session `client` is on is encrypted, as the server sees it.
async fn server_says_ssl(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[tokio::test]
async fn tls_modes_against_a_server_with_a_private_ca() {
    let s = start_tls_server();
    let base = format!("postgres://postgres@127.0.0.1:{}/postgres", s.port);

    // No sslmode on this machine: plaintext, as before TLS existed (the server allows both).
    let plain = intelli::pg::connect(&base).await.expect("plaintext");
    assert!(!server_says_ssl(&plain).await);

    // require: encrypted without checking who the server is.
    let c = intelli::pg::connect(&format!("{base}?sslmode=require"))
        .await
        .expect("sslmode=require");
    assert!(server_says_ssl(&c).await);

    // verify-full with the CA that signed the server's certificate.
    let ca = s.pki.ca.display().to_string();
    let c = intelli::pg::connect(&format!("{base}?sslmode=verify-full&sslrootcert={ca}"))
        .await
        .expect("sslmode=verify-full with the right CA");
    assert!(server_says_ssl(&c).await);
    // The same through localhost, the certificate's other name.
    let c = intelli::pg::connect(&format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
        s.port
    ))
    .await
    .expect("sslmode=verify-full through localhost");
    assert!(server_says_ssl(&c).await);

    // verify-full with another CA: refused, saying why.
    let other = s.dir.path().join("other-ca.pem");
    std::fs::write(&other, make_ca("someone else's CA").pem()).expect("write other CA");
    let err = intelli::pg::connect(&format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        other.display()
    ))
    .await
    .expect_err("a certificate from an unknown CA must be refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("TLS certificate"), "{msg}");
    assert!(msg.contains("not signed by a trusted CA"), "{msg}");
    assert!(msg.contains("sslrootcert"), "{msg}");

    // verify-full without sslrootcert uses the system's roots, which do not know the test CA.
    let err = intelli::pg::connect(&format!("{base}?sslmode=verify-full"))
        .await
        .expect_err("the system's roots do not trust the test CA");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("UnknownIssuer") || msg.contains("no trusted CA certificates"),
        "{msg}"
    );
}

#[tokio::test]
async fn plaintext_to_another_host_is_refused_before_connecting() {
    // A name that would not resolve: the refusal must come before any attempt.
    for url in [
        "postgres://postgres:pw@db.invalid:5432/postgres?sslmode=prefer",
        "postgres://postgres:pw@db.invalid:5432/postgres?sslmode=allow",
    ] {
        let err = intelli::pg::connect(url).await.expect_err(url);
        let msg = format!("{err:#}");
        assert!(msg.contains("refusing"), "{msg}");
        assert!(msg.contains("unencrypted"), "{msg}");
        assert!(!msg.contains("pw@"), "the password leaked: {msg}");
    }
}
