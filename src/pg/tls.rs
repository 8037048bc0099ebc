//! TLS for direct PostgreSQL connections, read from the connection URL with libpq's names:
//! `sslmode` and `sslrootcert`.
//!
//! | `sslmode` | local host (loopback, Unix socket) | any other host |
//! | --- | --- | --- |
//! | absent | `disable` (as libpq's tools behave on this machine's servers) | `verify-full` |
//! | `disable` | plaintext | plaintext (the operator said so) |
//! | `allow`, `prefer` | TLS when offered, certificate not checked | refused: both fall back to plaintext without saying so |
//! | `require` | TLS, certificate not checked | same |
//! | `verify-ca` | refused: use `verify-full` | same |
//! | `verify-full` | TLS; chain to a trusted root and host name checked | same |
//!
//! Trusted roots: the file named by `sslrootcert` (PEM, one or more CA certificates; Supabase
//! publishes its own CA), else the system's store (`rustls-native-certs`; `sslrootcert=system`
//! says so explicitly, as in libpq 16). `sslrootcert` with another mode than `verify-full` is
//! refused rather than ignored, so nobody believes a certificate is checked when it is not.
//! tokio-postgres itself knows only `disable | prefer | require`: both parameters are taken out of
//! the URL before it parses the rest.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the connection asks for, after the defaults above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Local hosts only: TLS when the server offers it.
    Prefer,
    Require,
    VerifyFull,
}

/// Where the trusted roots of `verify-full` come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    System,
    File(PathBuf),
}

/// A connection string taken apart: what tokio-postgres parses, and the TLS it needs.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub config: tokio_postgres::Config,
    pub mode: SslMode,
    pub roots: Roots,
}

/// A connection string intelli will not use as written. Never repeats a password.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the PostgreSQL connection string is not a postgres:// URL")]
    NotAUrl,
    #[error("invalid PostgreSQL connection string")]
    Invalid(#[source] tokio_postgres::Error),
    #[error("sslmode={0} is not supported: use sslmode=verify-full (or require, or disable)")]
    UnsupportedMode(String),
    #[error(
        "refusing sslmode={mode} to {host}: it falls back to an unencrypted connection without saying so; \
         use sslmode=verify-full (or require), or write sslmode=disable if the network is trusted"
    )]
    PlaintextFallback { mode: String, host: String },
    #[error(
        "sslrootcert is only read with sslmode=verify-full (with sslmode={mode} the certificate would not be checked)"
    )]
    RootCertWithoutVerify { mode: String },
    #[error("cannot read the CA certificates in sslrootcert={path}")]
    RootCertFile {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("sslrootcert={path} holds no usable CA certificate")]
    RootCertEmpty { path: String },
    #[error(
        "sslmode=verify-full: no trusted CA certificates were found on this system; install them \
         (Debian: apt-get install ca-certificates) or name the server's CA with sslrootcert=<file>"
    )]
    NoSystemRoots,
    #[error("building the TLS configuration")]
    Rustls(#[source] rustls::Error),
}

/// Take `url` apart (see the module docs for the rules).
pub fn parse(url: &str) -> Result<ConnectSpec, TlsSetupError> {
    let mut u = url::Url::parse(url).map_err(|_| TlsSetupError::NotAUrl)?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(TlsSetupError::NotAUrl);
    }
    let mut sslmode = None;
    let mut sslrootcert = None;
    let rest: Vec<(String, String)> = u
        .query_pairs()
        .filter_map(|(k, v)| match k.as_ref() {
            "sslmode" => {
                sslmode = Some(v.into_owned());
                None
            }
            "sslrootcert" => {
                sslrootcert = Some(v.into_owned());
                None
            }
            _ => Some((k.into_owned(), v.into_owned())),
        })
        .collect();
    if rest.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(&rest);
    }
    let config: tokio_postgres::Config = u.as_str().parse().map_err(TlsSetupError::Invalid)?;
    let remote = remote_host(&config);
    let mode = match (sslmode.as_deref(), &remote) {
        (None, None) | (Some("disable"), _) => SslMode::Disable,
        (None, Some(_)) | (Some("verify-full"), _) => SslMode::VerifyFull,
        (Some("require"), _) => SslMode::Require,
        (Some("allow" | "prefer"), None) => SslMode::Prefer,
        (Some(m @ ("allow" | "prefer")), Some(host)) => {
            return Err(TlsSetupError::PlaintextFallback {
                mode: m.to_owned(),
                host: host.clone(),
            });
        }
        (Some(other), _) => return Err(TlsSetupError::UnsupportedMode(other.to_owned())),
    };
    let roots = match sslrootcert.as_deref() {
        None | Some("system") => Roots::System,
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    if let (Some(_), Some(m)) = (&sslrootcert, sslmode.as_deref())
        && mode != SslMode::VerifyFull
    {
        return Err(TlsSetupError::RootCertWithoutVerify { mode: m.to_owned() });
    }
    Ok(ConnectSpec {
        config,
        mode,
        roots,
    })
}

/// The first host that is not this machine, if any (a multi-host string is local only when
/// every host is).
fn remote_host(config: &tokio_postgres::Config) -> Option<String> {
    let hosts = config.get_hosts().iter().filter_map(|h| match h {
        Host::Tcp(name) if !is_loopback_name(name) => Some(name.clone()),
        Host::Tcp(_) | Host::Unix(_) => None,
    });
    let addrs = config
        .get_hostaddrs()
        .iter()
        .filter(|a| !a.is_loopback())
        .map(|a| a.to_string());
    hosts.chain(addrs).next()
}

fn is_loopback_name(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The tokio-postgres config and TLS connector for `spec`; `None` for plaintext.
pub fn connector(spec: &ConnectSpec) -> Result<Option<MakeRustlsConnect>, TlsSetupError> {
    let client = match (spec.mode, &spec.roots) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::Prefer | SslMode::Require, _) => unverified_config()?,
        (SslMode::VerifyFull, Roots::System) => system_config()?,
        (SslMode::VerifyFull, Roots::File(path)) => file_config(path)?,
    };
    Ok(Some(MakeRustlsConnect::new(client)))
}

/// tokio-postgres's own mode for ours: it negotiates; the connector decides what is trusted.
pub fn pg_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyFull => PgSslMode::Require,
    }
}

/// One crypto provider, named explicitly: reqwest pulls in the same aws-lc-rs backend, and a
/// process-wide default would be ambiguous if another backend were ever compiled in.
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(aws_lc_rs::default_provider()))
        .clone()
}

fn with_roots(roots: RootCertStore) -> Result<ClientConfig, TlsSetupError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rustls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system's roots are read once per process: the direct SQL path opens a connection per
/// statement batch.
fn system_config() -> Result<ClientConfig, TlsSetupError> {
    static SYSTEM: OnceLock<Option<ClientConfig>> = OnceLock::new();
    let cached = SYSTEM.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if roots.is_empty() {
            None
        } else {
            with_roots(roots).ok()
        }
    });
    cached.clone().ok_or(TlsSetupError::NoSystemRoots)
}

fn file_config(path: &std::path::Path) -> Result<ClientConfig, TlsSetupError> {
    let shown = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsSetupError::RootCertFile {
            path: shown.clone(),
            source,
        })?;
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(TlsSetupError::RootCertEmpty { path: shown });
    }
    with_roots(roots)
}

fn unverified_config() -> Result<ClientConfig, TlsSetupError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
        .with_no_client_auth())
}

/// `require` (libpq's meaning): encrypted, whoever the server is. The handshake's signatures
/// are still checked, so the session is bound to the certificate that was presented.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether a failed [`crate::pg::connect`] was refused for its TLS settings or the server's
/// certificate (a person must act) rather than for the network (it may pass later).
pub fn is_configuration_error(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<TlsSetupError>().is_some() || certificate_error(c).is_some())
}

/// The certificate problem behind a failed connection, if that is what failed.
pub fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let rustls_err = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(c)) = rustls_err {
            // A foreign, non-exhaustive enum: the common cases in words, the rest as named.
            return Some(match c {
                rustls::CertificateError::UnknownIssuer => {
                    "UnknownIssuer: not signed by a trusted CA".to_owned()
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "NotValidForName: it does not name this host".to_owned()
                }
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => "Expired".to_owned(),
                other => format!("{other:?}"),
            });
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> Result<SslMode, TlsSetupError> {
        parse(url).map(|s| s.mode)
    }

    #[test]
    fn defaults_depend_on_the_host() {
        assert_eq!(
            mode("postgres://u@127.0.0.1:5432/db").unwrap(),
            SslMode::Disable
        );
        assert_eq!(mode("postgres://u@localhost/db").unwrap(), SslMode::Disable);
        assert_eq!(mode("postgres://u@[::1]/db").unwrap(), SslMode::Disable);
        assert_eq!(
            mode("postgres://u@db.abc.supabase.co:5432/postgres").unwrap(),
            SslMode::VerifyFull
        );
        // One remote host among local ones makes the string remote.
        assert_eq!(
            mode("postgres://u@localhost,db.example.com/db").unwrap(),
            SslMode::VerifyFull
        );
    }

    #[test]
    fn explicit_modes_and_refusals() {
        let remote = "postgres://u:pw@db.example.com/db";
        assert_eq!(
            mode(&format!("{remote}?sslmode=disable")).unwrap(),
            SslMode::Disable
        );
        assert_eq!(
            mode(&format!("{remote}?sslmode=require")).unwrap(),
            SslMode::Require
        );
        let e = mode(&format!("{remote}?sslmode=prefer")).unwrap_err();
        assert!(matches!(e, TlsSetupError::PlaintextFallback { .. }), "{e}");
        assert!(e.to_string().contains("db.example.com"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
        assert_eq!(
            mode("postgres://u@127.0.0.1/db?sslmode=prefer").unwrap(),
            SslMode::Prefer
        );
        assert!(matches!(
            mode(&format!("{remote}?sslmode=verify-ca")),
            Err(TlsSetupError::UnsupportedMode(_))
        ));
        assert!(matches!(
            mode(&format!("{remote}?sslmode=require&sslrootcert=/x.pem")),
            Err(TlsSetupError::RootCertWithoutVerify { .. })
        ));
        assert!(matches!(
            mode("host=db.example.com"),
            Err(TlsSetupError::NotAUrl)
        ));
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_rest_kept() {
        let s = parse(
            "postgres://u@db.example.com:6543/postgres?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=intelli",
        )
        .unwrap();
        assert_eq!(s.roots, Roots::File(PathBuf::from("/etc/ca.pem")));
        assert_eq!(s.config.get_application_name(), Some("intelli"));
        assert_eq!(s.config.get_ports(), &[6543]);
        assert_eq!(pg_mode(s.mode), PgSslMode::Require);
    }
}
