//! `ipfm relay`: follow a station and re-serve it.

use anyhow::Context;
use ipfm_node::config::LogFormat;
use ipfm_node::repo::Repo;

use crate::shared::{init_logging, shutdown_signal, BlockArgs, PeerArgs, RepoPath};

/// The relay's libp2p ports unless told otherwise: next to a station's 4001.
const RELAY_P2P_DEFAULT: [&str; 2] = ["/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"];

/// `ipfm relay` flags.
#[derive(clap::Args)]
#[command(mut_arg("p2p_listen", |arg| arg.help(
    "libp2p listen address (repeatable) [default: TCP and QUIC on port 4002, beside a \
     station's 4001]"
)))]
pub struct RelayArgs {
    /// The station: IPNS name (k51…), peer id, or a multiaddr ending in /p2p/<id> (dialled
    /// first).
    #[arg(value_name = "STATION")]
    station: String,
    /// Gateway listen address (serves /ipns/<station>/…, /api/v1/relay, /healthz).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    peer: PeerArgs,
    #[command(flatten)]
    block: BlockArgs,
    /// Seconds that superseded roots stay pinned (and their blocks stored).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    retention_secs: u64,
    /// Log format on stderr: text or json.
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
}

pub async fn run(args: RelayArgs, repo_path: impl RepoPath) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let target = ipfm_node::listen::StationTarget::parse(&args.station)
        .with_context(|| format!("STATION {:?}", args.station))?;
    let p2p = args.peer.p2p_config(&RELAY_P2P_DEFAULT);
    let mut config = ipfm_node::relay::RelayConfig::new(target.station, p2p);
    config.follow.start_addrs.extend(target.dial);
    config.retention = std::time::Duration::from_secs(args.retention_secs);
    config.follow.blocked_peers = args.block.peer_ids()?;
    let repo = Repo::init(&repo_path()?).await?.repo;
    let key = repo.store().load_or_create_key().await?;
    ipfm_node::relay::run(
        repo.store().clone(),
        key,
        config,
        args.listen,
        shutdown_signal(),
        |info| {
            println!("ipfm relay following {}", info.station);
            println!("gateway:   {}", info.gateway_url);
            println!("peer id:   {}", info.peer_id);
            for addr in &info.p2p_addrs {
                println!("p2p:       {addr}");
            }
            println!("status:    http://{}/api/v1/relay", info.listen);
        },
    )
    .await?;
    repo.close().await?;
    Ok(())
}
