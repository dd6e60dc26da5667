//! What `ipfm listen` is given: a station's IPNS name or peer id, or a multiaddr to dial
//! that ends in the station's `/p2p/<peer id>`.

use ipfm_protocol::peer::PeerId;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use super::ListenError;

/// The station to follow, and where to dial it first (if known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationTarget {
    pub station: PeerId,
    pub dial: Option<Multiaddr>,
}

impl StationTarget {
    /// Parses `k51…`, `12D3KooW…`, `Qm…`, `/ipns/<name>`, `ipns://<name>`, or a multiaddr
    /// ending in `/p2p/<peer id>`.
    pub fn parse(text: &str) -> Result<StationTarget, ListenError> {
        let text = text.trim();
        let not_a_name = |reason: String| ListenError::NotAName {
            text: text.to_owned(),
            reason,
        };
        let name = text
            .strip_prefix("/ipns/")
            .or_else(|| text.strip_prefix("ipns://"))
            .map(|rest| rest.trim_end_matches('/'));
        if let Some(name) = name {
            return parse_name(name).map_err(not_a_name);
        }
        if text.starts_with('/') {
            let addr: Multiaddr = text
                .parse()
                .map_err(|e| not_a_name(format!("bad multiaddr: {e}")))?;
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(not_a_name(
                    "the multiaddr does not end in /p2p/<peer id>".into(),
                ));
            };
            let station = PeerId::from_multihash_bytes(&peer.to_bytes())
                .map_err(|e| not_a_name(e.to_string()))?;
            return Ok(StationTarget {
                station,
                dial: Some(addr),
            });
        }
        parse_name(text).map_err(not_a_name)
    }
}

fn parse_name(text: &str) -> Result<StationTarget, String> {
    let station = PeerId::parse(text).map_err(|e| e.to_string())?;
    Ok(StationTarget {
        station,
        dial: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn station() -> PeerId {
        PeerId::from_ed25519(&SigningKey::from_bytes(&[5; 32]).verifying_key())
    }

    #[test]
    fn names_in_every_spelling() {
        let peer = station();
        for text in [
            peer.to_ipns_name(),
            peer.to_string(),
            format!("/ipns/{}", peer.to_ipns_name()),
            format!("ipns://{}/", peer.to_ipns_name()),
        ] {
            let target = StationTarget::parse(&text).unwrap();
            assert_eq!(target.station, peer, "{text}");
            assert_eq!(target.dial, None);
        }
    }

    #[test]
    fn multiaddr_with_peer_id_is_dialled() {
        let peer = station();
        let text = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}");
        let target = StationTarget::parse(&text).unwrap();
        assert_eq!(target.station, peer);
        assert_eq!(target.dial, Some(text.parse().unwrap()));
    }

    #[test]
    fn garbage_is_not_a_name() {
        for text in [
            "",
            "hello",
            "k51garbage",
            "/ip4/127.0.0.1/tcp/4001",
            "/ipns/xyz",
            "bafkqaaa",
        ] {
            let error = StationTarget::parse(text).unwrap_err();
            assert!(
                error.to_string().starts_with("not an IPNS name: "),
                "{text}: {error}"
            );
        }
    }
}
