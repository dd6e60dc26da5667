//! `ipfm listen`: follow a station peer to peer and play it.

use std::io::IsTerminal;

use ipfm_node::listen::{ListenConfig, ListenEnd, ListenOutput, StartAt, StationTarget};

use crate::shared::{BlockArgs, PeerArgs};

/// The listener's own libp2p ports: kernel-chosen, so it runs beside a local station.
const LISTEN_P2P_DEFAULT: [&str; 2] = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"];

/// `ipfm listen` flags.
#[derive(clap::Args)]
#[command(mut_arg("p2p_listen", |arg| arg.help(
    "libp2p listen address (repeatable) [default: TCP and QUIC on kernel-chosen ports]"
)))]
pub struct ListenArgs {
    /// The station: IPNS name (k51…), peer id, or a multiaddr ending in /p2p/<id> (dialled
    /// first).
    #[arg(value_name = "STATION")]
    station: String,
    /// Rendition to play on stdout.
    #[arg(long, default_value = ipfm_node::listen::DEFAULT_RENDITION)]
    rendition: String,
    /// Serve the station over HTTP on ADDR for any HLS player instead of writing to stdout.
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// Seconds to wait for the station's first root before giving up.
    #[arg(long, value_name = "SECS", default_value_t = ipfm_node::listen::DEFAULT_TIMEOUT.as_secs())]
    timeout: u64,
    /// Start this many segments before the live edge (stdout only).
    #[arg(long, value_name = "N", default_value_t = 3)]
    live_edge: usize,
    #[command(flatten)]
    peer: PeerArgs,
    #[command(flatten)]
    block: BlockArgs,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let target = StationTarget::parse(&args.station)?;
    let output = match args.serve {
        Some(addr) => ListenOutput::Serve(addr),
        None if std::io::stdout().is_terminal() => anyhow::bail!(
            "stdout is a terminal: pipe the stream into a player (`ipfm listen {} | mpv -`) \
             or serve it with --serve 127.0.0.1:8090",
            args.station
        ),
        None => ListenOutput::Stream,
    };
    let p2p = args.peer.p2p_config(&LISTEN_P2P_DEFAULT);
    let config = ListenConfig {
        target,
        rendition: args.rendition,
        timeout: std::time::Duration::from_secs(args.timeout),
        p2p,
        output,
        start: StartAt::LiveEdge(args.live_edge),
        blocked_peers: args.block.peer_ids()?,
    };
    let mut stdout = tokio::io::stdout();
    let mut stderr = std::io::stderr();
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot wait for Ctrl-C; stop with a signal instead");
            std::future::pending::<()>().await;
        }
    };
    let end = ipfm_node::listen::run(config, &mut stdout, &mut stderr, ctrl_c).await?;
    match end {
        ListenEnd::ReaderClosed => eprintln!("the player closed the stream; stopped listening"),
        ListenEnd::Shutdown => eprintln!("stopped listening"),
        ListenEnd::FollowerStopped => anyhow::bail!("following the station stopped unexpectedly"),
    }
    Ok(())
}
