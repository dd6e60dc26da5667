//! `ipfm listen --serve ADDR`: the followed station re-served on a local port for any HLS
//! player, through the same gateway as the station's own (`/ipns/<station>/master.m3u8`),
//! resolving the station's name to the newest record this node followed.

use std::net::SocketAddr;
use std::sync::Arc;

use ipfm_protocol::peer::PeerId;
use ipfm_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ListenError;
use crate::follow::FollowedRoot;
use crate::gateway::{self, Gateway, GatewayConfig, LocalNames};

/// A local gateway serving one followed station from the listener's store.
pub struct LocalHls {
    station: PeerId,
    addr: SocketAddr,
    names: Arc<LocalNames>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl LocalHls {
    /// Binds `addr` and serves `store`; `GET /` redirects to the station's player.
    pub async fn start(
        store: Store,
        station: PeerId,
        addr: SocketAddr,
    ) -> Result<Self, ListenError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ListenError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ListenError::Bind { addr, source })?;
        let names = Arc::new(LocalNames::new());
        let router = Gateway::new(store)
            .with_name_resolver(names.clone())
            .with_config(GatewayConfig {
                root_redirect: Some(station_path(&station)),
                ..GatewayConfig::default()
            })
            .router();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Ok(LocalHls {
            station,
            addr,
            names,
            stop,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/ipns/<station>/master.m3u8`: what to give a player.
    pub fn playlist_url(&self) -> String {
        format!(
            "http://{}{}master.m3u8",
            self.addr,
            station_path(&self.station)
        )
    }

    /// Serve `followed` from now on (its record is validated again: the gateway only ever
    /// serves records that verify for the station's name).
    pub fn publish(&self, followed: &FollowedRoot) -> Result<(), ListenError> {
        self.names
            .publish(self.station, followed.record.clone())
            .map(drop)
            .map_err(|e| ListenError::BadRecord {
                name: self.station.to_ipns_name(),
                detail: e.to_string(),
            })
    }

    /// Stops accepting and lets open responses finish (bounded by the caller).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "local HLS server failed"),
            Err(error) => tracing::warn!(%error, "local HLS server task failed"),
        }
    }
}

/// `/ipns/<k51…>/`.
fn station_path(station: &PeerId) -> String {
    format!("/ipns/{}/", station.to_ipns_name())
}
