//! Delegated routing (specs.ipfs.tech/routing/http-routing-v1): `PUT
//! /routing/v1/ipns/{name}` hands the station's record to an HTTP router (someguy, a
//! Kubo with `Gateway.ExposeRoutingAPI`, …), which then answers `GET` for it.
//!
//! The client is hyper's HTTP/1.1 connection API, already in the dependency tree through
//! axum, over plain TCP for `http://` endpoints and over rustls for `https://` ones (the
//! rustls and aws-lc-rs that QUIC already links; certificates checked against the Mozilla
//! roots compiled in by `webpki-roots`, so a slim container needs no CA bundle). Failures
//! are the caller's to log: a router being down never stops the station.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

/// The record's media type in the routing API.
pub const IPNS_RECORD_CONTENT_TYPE: &str = "application/vnd.ipfs.ipns-record";

/// Why an endpoint cannot be used or a PUT failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DelegatedError {
    #[error("{0:?} is not an http:// or https:// URL without user info or query")]
    BadEndpoint(String),
    #[error("{endpoint}: {reason}")]
    Request { endpoint: String, reason: String },
    #[error("{endpoint} answered {status}")]
    Status {
        endpoint: String,
        status: StatusCode,
    },
    #[error("{0} did not answer in time")]
    Timeout(String),
}

/// A delegated routing endpoint: `http[s]://host[:port][/prefix]`; the routing API is under
/// `{prefix}/routing/v1/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedEndpoint {
    /// `Some` for https: how the router's certificate is checked.
    tls: Option<TlsRoots>,
    host: String,
    port: u16,
    /// Path before `/routing/v1`, without a trailing slash (often empty).
    prefix: String,
}

/// The client TLS settings of an https endpoint; endpoints compare equal when they trust
/// the same roots object.
#[derive(Clone)]
struct TlsRoots(Arc<rustls::ClientConfig>);

impl PartialEq for TlsRoots {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsRoots {}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsRoots")
    }
}

/// TLS 1.2/1.3 with aws-lc-rs (rustls' provider in this build, through QUIC) and HTTP/1.1
/// offered by ALPN.
fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The default for https endpoints: the Mozilla root program's CAs (`webpki-roots`), built
/// once and shared by every endpoint.
static WEB_PKI: LazyLock<TlsRoots> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    TlsRoots(client_config(roots))
});

impl FromStr for DelegatedEndpoint {
    type Err = DelegatedError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || DelegatedError::BadEndpoint(text.to_owned());
        let uri: Uri = text.parse().map_err(|_| bad())?;
        let (tls, default_port) = match uri.scheme_str() {
            Some("http") => (None, 80),
            Some("https") => (Some(WEB_PKI.clone()), 443),
            _ => return Err(bad()),
        };
        if uri.query().is_some() {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        Ok(DelegatedEndpoint {
            tls,
            host: authority.host().to_owned(),
            port: authority.port_u16().unwrap_or(default_port),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for DelegatedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.prefix)
    }
}

impl DelegatedEndpoint {
    /// The path of the PUT for `name`: the name as a base36 libp2p-key CID (`k51…`).
    pub fn ipns_path(&self, name: &PeerId) -> String {
        format!("{}/routing/v1/ipns/{}", self.prefix, name.to_ipns_name())
    }

    /// `PUT` `record` for `name`; any 2xx is success.
    pub async fn put_ipns(
        &self,
        name: &PeerId,
        record: &IpnsRecord,
        timeout: Duration,
    ) -> Result<(), DelegatedError> {
        tokio::time::timeout(timeout, self.put_ipns_now(name, record))
            .await
            .map_err(|_| DelegatedError::Timeout(self.to_string()))?
    }

    /// This https endpoint, checking the router's certificate against `roots` instead of
    /// the Mozilla roots (a router with a private CA; tests). An http endpoint stays as it is.
    pub fn trusting(mut self, roots: rustls::RootCertStore) -> Self {
        if self.tls.is_some() {
            self.tls = Some(TlsRoots(client_config(roots)));
        }
        self
    }

    async fn put_ipns_now(&self, name: &PeerId, record: &IpnsRecord) -> Result<(), DelegatedError> {
        let failed = |reason: String| DelegatedError::Request {
            endpoint: self.to_string(),
            reason,
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let stream = tokio::net::TcpStream::connect((host, self.port))
            .await
            .map_err(|e| failed(format!("connecting: {e}")))?;
        let body = record.to_bytes();
        let request = Request::put(self.ipns_path(name))
            .header(header::HOST, format!("{}:{}", self.host, self.port))
            .header(header::CONTENT_TYPE, IPNS_RECORD_CONTENT_TYPE)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .map_err(|e| failed(e.to_string()))?;
        let status = match &self.tls {
            None => exchange(stream, request).await,
            Some(TlsRoots(config)) => {
                let server_name = ServerName::try_from(host.to_owned())
                    .map_err(|e| failed(format!("TLS server name {host:?}: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(server_name, stream)
                    .await
                    .map_err(|e| failed(format!("TLS handshake: {e}")))?;
                exchange(stream, request).await
            }
        }
        .map_err(failed)?;
        if status.is_success() {
            Ok(())
        } else {
            Err(DelegatedError::Status {
                endpoint: self.to_string(),
                status,
            })
        }
    }
}

/// One HTTP/1.1 request on `io`; the response's status.
async fn exchange<Io>(io: Io, request: Request<Body>) -> Result<StatusCode, String>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection future drives the socket; it ends when the exchange is over.
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "delegated routing connection closed");
        }
    });
    let response = sender.send_request(request).await;
    driver.abort();
    Ok(response.map_err(|e| e.to_string())?.status())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    #[test]
    fn endpoints_parse_with_and_without_prefix() {
        let name = PeerId::from_ed25519(&SigningKey::from_bytes(&[1; 32]).verifying_key());
        let plain: DelegatedEndpoint = "http://127.0.0.1:8190".parse().unwrap();
        assert_eq!(
            plain.ipns_path(&name),
            format!("/routing/v1/ipns/{}", name.to_ipns_name())
        );
        let prefixed: DelegatedEndpoint = "http://router.local/api/".parse().unwrap();
        assert_eq!(prefixed.port, 80);
        assert!(prefixed
            .ipns_path(&name)
            .starts_with("/api/routing/v1/ipns/k51"));
        let secure: DelegatedEndpoint = "https://delegated-ipfs.dev".parse().unwrap();
        assert_eq!(secure.port, 443);
        assert_eq!(secure.to_string(), "https://delegated-ipfs.dev:443");
        assert_eq!(plain.to_string(), "http://127.0.0.1:8190");
        for bad in [
            "ftp://router.local/",
            "https://user@router.local/",
            "127.0.0.1:80",
            "http://user@host/",
            "http://h/?q=1",
            "",
        ] {
            assert!(bad.parse::<DelegatedEndpoint>().is_err(), "{bad}");
        }
    }
}
