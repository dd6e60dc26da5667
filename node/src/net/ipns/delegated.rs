//! Delegated routing (specs.ipfs.tech/routing/http-routing-v1): `PUT
//! /routing/v1/ipns/{name}` hands the station's record to an HTTP router (someguy, a
//! Kubo with `Gateway.ExposeRoutingAPI`, …), which then answers `GET` for it.
//!
//! The client is hyper's HTTP/1.1 connection API, already in the dependency tree through
//! axum; plain `http://` endpoints only (no TLS stack is linked in). Failures are the
//! caller's to log: a router being down never stops the station.

use std::str::FromStr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;

/// The record's media type in the routing API.
pub const IPNS_RECORD_CONTENT_TYPE: &str = "application/vnd.ipfs.ipns-record";

/// Why an endpoint cannot be used or a PUT failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum DelegatedError {
    #[error("{0:?} is not an http:// URL (https is not supported)")]
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

/// A delegated routing endpoint: `http://host[:port][/prefix]`; the routing API is under
/// `{prefix}/routing/v1/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedEndpoint {
    host: String,
    port: u16,
    /// Path before `/routing/v1`, without a trailing slash (often empty).
    prefix: String,
}

impl FromStr for DelegatedEndpoint {
    type Err = DelegatedError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || DelegatedError::BadEndpoint(text.to_owned());
        let uri: Uri = text.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") || uri.query().is_some() {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        Ok(DelegatedEndpoint {
            host: authority.host().to_owned(),
            port: authority.port_u16().unwrap_or(80),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl std::fmt::Display for DelegatedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.prefix)
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

    async fn put_ipns_now(&self, name: &PeerId, record: &IpnsRecord) -> Result<(), DelegatedError> {
        let failed = |reason: String| DelegatedError::Request {
            endpoint: self.to_string(),
            reason,
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let stream = tokio::net::TcpStream::connect((host, self.port))
            .await
            .map_err(|e| failed(format!("connecting: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("HTTP handshake: {e}")))?;
        // The connection future drives the socket; it ends when the exchange is over.
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "delegated routing connection closed");
            }
        });
        let body = record.to_bytes();
        let request = Request::put(self.ipns_path(name))
            .header(header::HOST, format!("{}:{}", self.host, self.port))
            .header(header::CONTENT_TYPE, IPNS_RECORD_CONTENT_TYPE)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .map_err(|e| failed(e.to_string()))?;
        let response = sender.send_request(request).await;
        driver.abort();
        let status = response.map_err(|e| failed(e.to_string()))?.status();
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
        for bad in [
            "https://delegated-ipfs.dev",
            "127.0.0.1:80",
            "http://user@host/",
            "http://h/?q=1",
            "",
        ] {
            assert!(bad.parse::<DelegatedEndpoint>().is_err(), "{bad}");
        }
    }
}
