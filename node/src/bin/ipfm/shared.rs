//! What several subcommands share: the libp2p flags, logging, the shutdown signal.

use std::path::PathBuf;

use anyhow::Context;

use ipfm_node::config::LogFormat;
use ipfm_node::repo::RepoError;
use ipfm_node::station::network::P2pConfig;

/// Where the repository is, asked only by the subcommands that need one (so that
/// `add --only-hash` works without `$HOME`).
pub trait RepoPath: Fn() -> Result<PathBuf, RepoError> {}
impl<F: Fn() -> Result<PathBuf, RepoError>> RepoPath for F {}

/// The libp2p flags of every node that joins the network (`station`, `relay`, `listen`).
/// Each subcommand states its own `--p2p-listen` default in its help (`mut_arg`), because
/// the defaults differ: a station and a relay must be reachable on fixed ports, a listener
/// runs beside them on kernel-chosen ones.
#[derive(clap::Args)]
pub struct PeerArgs {
    /// libp2p listen address (repeatable).
    #[arg(long = "p2p-listen", value_name = "MULTIADDR")]
    p2p_listen: Vec<libp2p::Multiaddr>,
    /// Extra bootstrap peer, with `/p2p/<id>` (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<libp2p::Multiaddr>,
    /// Do not dial the public IPFS bootstrap peers.
    #[arg(long)]
    no_default_bootstrap: bool,
}

impl PeerArgs {
    /// The public network settings with these flags applied: the listen addresses replace
    /// `default_listen` if any were given, the public bootstrap peers stay unless refused,
    /// the extra ones are added.
    pub fn p2p_config(&self, default_listen: &[&str]) -> P2pConfig {
        let mut p2p = P2pConfig::public();
        p2p.listen = if self.p2p_listen.is_empty() {
            default_listen
                .iter()
                .map(|a| a.parse().expect("built-in multiaddrs are valid"))
                .collect()
        } else {
            self.p2p_listen.clone()
        };
        if self.no_default_bootstrap {
            p2p.bootstrap.clear();
        }
        p2p.bootstrap.extend(self.bootstrap.iter().cloned());
        p2p
    }
}

/// `--block-peer`, for the subcommands that follow a station (relay, listen): peers this
/// node never connects to, e.g. the station itself, so that it follows the station only
/// through the relays it bootstraps from.
#[derive(clap::Args)]
pub struct BlockArgs {
    /// Never connect to this peer (IPNS name or peer id; repeatable).
    #[arg(long = "block-peer", value_name = "PEER")]
    block_peer: Vec<String>,
}

impl BlockArgs {
    /// The blocked peers as libp2p peer ids; the error names the flag and the bad value.
    pub fn peer_ids(&self) -> anyhow::Result<Vec<libp2p::PeerId>> {
        self.block_peer
            .iter()
            .map(|peer| {
                let parsed = ipfm_protocol::peer::PeerId::parse(peer)
                    .with_context(|| format!("--block-peer {peer:?}"))?;
                Ok(ipfm_node::net::swarm::to_libp2p_peer_id(&parsed))
            })
            .collect()
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// A progress bar on stderr with `template`, or a hidden one.
pub fn progress_bar(length: u64, template: &str, hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(length),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).expect("static template is valid"),
    );
    bar
}
