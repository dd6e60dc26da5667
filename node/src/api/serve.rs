//! Serving the gateway and the API: on one listener (the default) or on two, so that the
//! gateway can be public while the API stays on 127.0.0.1.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::Router;
use futures::FutureExt;
use tokio::net::TcpListener;

use super::ApiContext;
use crate::metrics::track_requests;

/// Binds `addr`, returning the listener and the address it got (port 0 resolved).
pub async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `gateway` (which already answers `/healthz`) on `gateway_listener` and the API
/// routes of `context` either alongside it or, given `api_listener`, on their own
/// listener (with a `/healthz` of their own), until `shutdown` completes. Every response
/// is counted in the metrics.
pub async fn serve(
    gateway_listener: TcpListener,
    api_listener: Option<TcpListener>,
    gateway: Router,
    context: ApiContext,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let metrics = context.metrics.clone();
    let count = |router: Router| {
        router.layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            track_requests,
        ))
    };
    let shutdown = shutdown.shared();
    match api_listener {
        None => {
            let app = count(gateway.merge(super::router(context)));
            serve_one(gateway_listener, app, shutdown).await
        }
        Some(api_listener) => {
            let published = context.published.clone();
            let api =
                super::router(context).route("/healthz", crate::station::http::healthz(published));
            let (a, b) = tokio::join!(
                serve_one(gateway_listener, count(gateway), shutdown.clone()),
                serve_one(api_listener, count(api), shutdown),
            );
            a.and(b)
        }
    }
}

/// Serves with the peer address available to handlers ([`axum::extract::ConnectInfo`]),
/// which the listener count needs.
async fn serve_one(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
