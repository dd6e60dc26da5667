//! The station's HTTP surface: the gateway (with `/` redirecting to the player) plus
//! `/healthz`, on one router.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, MethodRouter};
use axum::Router;
use ipfm_protocol::peer::PeerId;
use ipfm_store::Store;
use tokio::sync::watch;

use super::Published;
use crate::gateway::{BlockFetcher, Gateway, GatewayConfig, LocalNames, NoFetcher};

/// The player's path on the gateway: `/ipns/<k51…>/`.
pub fn player_path(name: &PeerId) -> String {
    format!("/ipns/{}/", name.to_ipns_name())
}

/// Gateway routes over `store` resolving `names`, `/` → the player of `station`, and
/// `/healthz`: 200 once the station published its first root, 503 before.
pub fn router(
    store: Store,
    names: Arc<LocalNames>,
    station: &PeerId,
    published: watch::Receiver<Option<Published>>,
) -> Router {
    router_with_fetcher(store, names, station, published, Arc::new(NoFetcher))
}

/// Like [`router`], asking `fetcher` (bitswap) for blocks the store lacks.
pub fn router_with_fetcher(
    store: Store,
    names: Arc<LocalNames>,
    station: &PeerId,
    published: watch::Receiver<Option<Published>>,
    fetcher: Arc<dyn BlockFetcher>,
) -> Router {
    let gateway = Gateway::new(store)
        .with_name_resolver(names)
        .with_block_fetcher(fetcher)
        .with_config(GatewayConfig {
            root_redirect: Some(player_path(station)),
            // As Kubo by default: blocks were verified when stored (and network blocks
            // always are); hashing every byte served would halve the gateway's throughput.
            hash_on_read: false,
        });
    gateway.router().route("/healthz", healthz(published))
}

/// The `/healthz` handler: 200 once the station published its first root, 503 before.
/// Mounted on the gateway's router and, when the API has its own listener, on that too.
pub fn healthz(published: watch::Receiver<Option<Published>>) -> MethodRouter {
    get(move || {
        let ready = published.borrow().is_some();
        async move {
            if ready {
                (StatusCode::OK, "ok\n")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "no root published yet\n")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use ed25519_dalek::SigningKey;
    use ipfm_protocol::cid::raw_cid;
    use tower::ServiceExt;

    async fn get_healthz(app: Router) -> StatusCode {
        let request = Request::get("/healthz").body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn healthz_is_503_until_the_first_root_is_published() {
        let station = PeerId::from_ed25519(&SigningKey::from_bytes(&[7; 32]).verifying_key());
        let (tx, rx) = watch::channel(None);
        let app = router(
            Store::open_in_memory(),
            Arc::new(LocalNames::new()),
            &station,
            rx,
        );
        assert_eq!(
            get_healthz(app.clone()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        tx.send_replace(Some(Published {
            root: raw_cid(b"root"),
            ipns_sequence: 1,
            media_sequence: 0,
            newest_sequence: 0,
            now_playing: None,
            at: std::time::SystemTime::now(),
        }));
        assert_eq!(get_healthz(app).await, StatusCode::OK);
    }
}
