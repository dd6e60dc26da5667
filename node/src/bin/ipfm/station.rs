//! `ipfm station`: the live station.

use std::path::PathBuf;

use ipfm_node::config::{LogFormat, StationSettings};
use ipfm_node::repo::Repo;
use ipfm_node::station::network::DEFAULT_P2P_LISTEN;

use crate::shared::{init_logging, shutdown_signal, PeerArgs, RepoPath};

/// Station flags; each overrides the same key of `--config` and of `IPFM_<KEY>`
/// (see docs/operations.md for every key, its default and its range).
#[derive(clap::Args)]
#[command(mut_arg("p2p_listen", |arg| arg.help(
    "libp2p listen address (repeatable) [default: TCP and QUIC on port 4001]"
)))]
pub struct StationArgs {
    /// TOML file with station settings (keys as the flags, with `_` for `-`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Station name shown by the player and the dashboard (1–100 characters)
    /// [default: "ipfm station"].
    #[arg(long)]
    name: Option<String>,
    /// Music directory; without one (or with an empty one) the built-in demo plays.
    #[arg(long, value_name = "DIR")]
    music: Option<PathBuf>,
    /// Jingles / station IDs directory.
    #[arg(long, value_name = "DIR")]
    jingles: Option<PathBuf>,
    /// Gateway listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Serve the API, /metrics and /healthz here instead of on the gateway's listener.
    #[arg(long)]
    api_listen: Option<std::net::SocketAddr>,
    /// Segments per live playlist (3–1000) [default: 20].
    #[arg(long)]
    window: Option<usize>,
    /// Seconds that segments which left the window stay fetchable before GC [default: 600].
    #[arg(long)]
    retention_secs: Option<u64>,
    /// Target segment duration in seconds (2–10) [default: 6].
    #[arg(long)]
    segment_seconds: Option<f64>,
    /// Renditions as name:bitrate,… [default: the encoder's three].
    #[arg(long, value_parser = parse_renditions)]
    renditions: Option<RenditionList>,
    /// IPNS record TTL in seconds [default: one segment].
    #[arg(long)]
    ipns_ttl_secs: Option<u64>,
    /// IPNS record validity in hours [default: 24].
    #[arg(long)]
    ipns_validity_hours: Option<u64>,
    /// Crossfade between tracks in seconds (0–30; 0 = gapless) [default: 0].
    #[arg(long)]
    crossfade: Option<f64>,
    /// Loudness target in LUFS (-70–0) [default: -16].
    #[arg(long, allow_negative_numbers = true)]
    target_lufs: Option<f64>,
    /// Play a jingle after every N tracks (0 = never) [default: 4].
    #[arg(long)]
    jingle_every: Option<u32>,
    /// Log format: text or json [default: text].
    #[arg(long)]
    log_format: Option<LogFormat>,
    #[command(flatten)]
    peer: PeerArgs,
    /// At most one IPNS DHT put per this many seconds (≥ 1) [default: 60].
    #[arg(long)]
    ipns_dht_put_interval_secs: Option<u64>,
    /// Delegated routing endpoint (http[s]://host[:port][/prefix]) to PUT each IPNS record to, rate
    /// limited like the DHT put (repeatable).
    #[arg(long = "delegated-routing", value_name = "URL")]
    delegated_routing: Vec<String>,
}

/// `--renditions`' parsed value (a newtype: clap treats a bare `Vec` as repeatable).
#[derive(Clone)]
struct RenditionList(Vec<ipfm_node::config::RenditionSetting>);

fn parse_renditions(text: &str) -> Result<RenditionList, String> {
    ipfm_node::config::parse_renditions(text).map(RenditionList)
}

impl StationArgs {
    /// The keys given as flags.
    fn settings(&self) -> StationSettings {
        StationSettings {
            station: ipfm_node::config::StationTable {
                name: self.name.clone(),
            },
            ipns: ipfm_node::config::IpnsTable {
                dht_put_interval_secs: self.ipns_dht_put_interval_secs,
                delegated_routing: (!self.delegated_routing.is_empty())
                    .then(|| self.delegated_routing.clone()),
            },
            music: self.music.clone(),
            jingles: self.jingles.clone(),
            listen: self.listen,
            api_listen: self.api_listen,
            window: self.window,
            retention_secs: self.retention_secs,
            segment_seconds: self.segment_seconds,
            renditions: self.renditions.clone().map(|r| r.0),
            ipns_ttl_secs: self.ipns_ttl_secs,
            ipns_validity_hours: self.ipns_validity_hours,
            crossfade: self.crossfade,
            target_lufs: self.target_lufs,
            jingle_every: self.jingle_every,
            log_format: self.log_format,
        }
    }
}

pub async fn run(args: StationArgs, repo_path: impl RepoPath) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => StationSettings::from_file(path)?,
        None => StationSettings::default(),
    };
    let settings = file
        .merged(StationSettings::from_env(std::env::vars())?)
        .merged(args.settings());
    let resolved = settings.resolve()?;
    init_logging(resolved.log_format);
    // `init` is idempotent: `ipfm station` with no arguments works on a fresh machine.
    let repo = Repo::init(&repo_path()?).await?.repo;
    let mut p2p = args.peer.p2p_config(&DEFAULT_P2P_LISTEN);
    p2p.ipns = resolved.ipns.clone();
    let mut config = ipfm_node::station::StationConfig {
        p2p: Some(p2p),
        api_token: Some(ipfm_node::api::ApiToken::new(repo.api_token()?)),
        ..resolved.station
    };
    config.encoder.spill_dir = Some(repo.spill_dir()?);
    let key = repo.store().load_or_create_key().await?;
    ipfm_node::station::run(
        repo.store().clone(),
        key,
        config,
        resolved.listen,
        shutdown_signal(),
        |info| {
            println!("ipfm station on the air");
            println!("player:    {}", info.player_url);
            println!("IPNS name: {}", info.ipns_name);
            println!("peer id:   {}", info.peer_id);
            for addr in &info.p2p_addrs {
                println!("p2p:       {addr}");
            }
            println!("api:       http://{}/api/v1/status", info.api);
            println!("dashboard: http://{}/admin", info.api);
        },
    )
    .await?;
    repo.close().await?;
    Ok(())
}
