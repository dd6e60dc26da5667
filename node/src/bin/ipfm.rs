//! `ipfm`: the command-line front of the ipfm node library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ipfm_node::config::{LogFormat, StationSettings};
use ipfm_node::import::{self, ImportOptions, OnlyHash};
use ipfm_node::repo::{self, Repo};
use ipfm_protocol::builder::CidMode;

#[derive(Parser)]
#[command(
    name = "ipfm",
    version,
    about = "InterPlanetary FM: an internet radio station that is an IPFS peer"
)]
struct Cli {
    /// Repository directory (default: $IPFM_REPO, else ~/.ipfm).
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the repository: store, station key and API token. Safe to run twice.
    Init,
    /// Add files or directories (recursively) as UnixFS; prints CIDs like `ipfs add`.
    Add(AddArgs),
    /// Show or export the station key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Play MUSIC_DIR once through into OUT_DIR as VOD HLS; prints OUT_DIR's root CID.
    Render(RenderArgs),
    /// Run the live station: encode, publish under the station's IPNS name, serve the gateway.
    // Boxed: its many optional flags make it far larger than the other variants.
    Station(Box<StationArgs>),
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Music directory (scanned recursively).
    #[arg(value_name = "MUSIC_DIR")]
    music: PathBuf,
    /// Output directory (created; must be empty).
    #[arg(value_name = "OUT_DIR")]
    out: PathBuf,
    #[command(flatten)]
    sound: SoundArgs,
    /// Do not show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

/// Station flags; each overrides the same key of `--config` and of `IPFM_<KEY>`
/// (see docs/operations.md for every key, its default and its range).
#[derive(clap::Args)]
struct StationArgs {
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
    /// libp2p listen address (repeatable; default: TCP and QUIC on port 4001).
    #[arg(long = "p2p-listen", value_name = "MULTIADDR")]
    p2p_listen: Vec<libp2p::Multiaddr>,
    /// Extra bootstrap peer, with `/p2p/<id>` (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<libp2p::Multiaddr>,
    /// Do not dial the public IPFS bootstrap peers.
    #[arg(long)]
    no_default_bootstrap: bool,
    /// At most one IPNS DHT put per this many seconds (≥ 1) [default: 60].
    #[arg(long)]
    ipns_dht_put_interval_secs: Option<u64>,
    /// Delegated routing endpoint (http://host[:port]) to PUT each IPNS record to, rate
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

    /// How the station joins the IPFS network.
    fn p2p_config(
        &self,
        ipns: ipfm_node::net::ipns::IpnsPublishConfig,
    ) -> ipfm_node::station::network::P2pConfig {
        let mut p2p = ipfm_node::station::network::P2pConfig::public();
        p2p.ipns = ipns;
        if !self.p2p_listen.is_empty() {
            p2p.listen = self.p2p_listen.clone();
        }
        if self.no_default_bootstrap {
            p2p.bootstrap.clear();
        }
        p2p.bootstrap.extend(self.bootstrap.iter().cloned());
        p2p
    }
}

/// Encoder settings shared by `render` and `station`.
#[derive(clap::Args)]
struct SoundArgs {
    /// Jingles / station IDs directory.
    #[arg(long, value_name = "DIR")]
    jingles: Option<PathBuf>,
    /// Target segment duration in seconds (2–10).
    #[arg(long, default_value_t = 6.0)]
    segment_seconds: f64,
    /// Crossfade between tracks in seconds (0 = gapless).
    #[arg(long, default_value_t = 0.0)]
    crossfade: f64,
    /// Play a jingle after every N tracks (0 = never).
    #[arg(long, default_value_t = 4)]
    jingle_every: u32,
}

#[derive(clap::Args)]
struct AddArgs {
    /// Files or directories to add.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// CID version: 1 = raw leaves (`ipfs add --cid-version=1`), 0 = Kubo's legacy default.
    #[arg(long, default_value = "1")]
    cid_version: CidVersion,
    /// Print only the CIDs.
    #[arg(short, long)]
    quiet: bool,
    /// Print only the final CID of each argument.
    #[arg(short = 'Q', long)]
    quieter: bool,
    /// Include files and directories whose names start with '.'.
    #[arg(short = 'H', long)]
    hidden: bool,
    /// Only compute the CIDs; store nothing (needs no repository).
    #[arg(short = 'n', long)]
    only_hash: bool,
    /// Do not show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum CidVersion {
    #[value(name = "0")]
    V0,
    #[value(name = "1")]
    V1,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Print the peer id and the station's IPNS name.
    Show,
    /// Write the station key to FILE (libp2p protobuf, as `ipfs key export`), mode 0600.
    Export {
        /// Destination file; must not exist yet.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`).
fn init_logging(format: LogFormat) {
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `station` picks its log format from its settings, once they are merged.
    if !matches!(cli.command, Command::Station(_)) {
        init_logging(LogFormat::Text);
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let repo_path = || repo::default_path(cli.repo.clone());
    match cli.command {
        Command::Init => {
            let path = repo_path()?;
            let init = Repo::init(&path).await?;
            let peer = init.repo.peer_id().await?;
            if init.created {
                println!("initialised ipfm repository at {}", path.display());
            } else {
                println!(
                    "ipfm repository already exists at {} (key kept)",
                    path.display()
                );
            }
            print_identity(&peer);
            init.repo.close().await?;
        }
        Command::Add(args) => add(args, repo_path).await?,
        Command::Render(args) => render(args).await?,
        Command::Station(args) => station(*args, repo_path).await?,
        Command::Key { command } => {
            let repo = Repo::open(&repo_path()?).await?;
            match command {
                KeyCommand::Show => print_identity(&repo.peer_id().await?),
                KeyCommand::Export { output } => {
                    if output.exists() {
                        anyhow::bail!(
                            "{}: already exists; refusing to overwrite a key file",
                            output.display()
                        );
                    }
                    repo.store()
                        .export_key(&output)
                        .await
                        .with_context(|| format!("exporting the key to {}", output.display()))?;
                    println!(
                        "wrote the station key to {} (mode 0600): keep it secret",
                        output.display()
                    );
                }
            }
            repo.close().await?;
        }
    }
    Ok(())
}

fn print_identity(peer: &ipfm_protocol::peer::PeerId) {
    println!("peer id:   {peer}");
    println!("IPNS name: {}", peer.to_ipns_name());
}

async fn add(
    args: AddArgs,
    repo_path: impl Fn() -> Result<PathBuf, repo::RepoError>,
) -> anyhow::Result<()> {
    let options = ImportOptions {
        mode: match args.cid_version {
            CidVersion::V0 => CidMode::V0DagPbLeaves,
            CidVersion::V1 => CidMode::V1RawLeaves,
        },
        hidden: args.hidden,
    };
    for path in &args.paths {
        // Fail before writing anything if an argument does not exist.
        std::fs::symlink_metadata(path).with_context(|| format!("{}", path.display()))?;
    }
    let total: u64 = args
        .paths
        .iter()
        .map(|p| import::total_size(p, args.hidden))
        .sum();
    let bar = progress_bar(total, args.no_progress || args.quiet || args.quieter);
    let on_progress = |n: u64| bar.inc(n);

    let repo = if args.only_hash {
        None
    } else {
        Some(Repo::open(&repo_path()?).await?)
    };
    for path in &args.paths {
        let added = match &repo {
            Some(repo) => import::add_path(repo.store(), path, options, &on_progress).await?,
            None => import::add_path(&OnlyHash, path, options, &on_progress).await?,
        };
        let root = added.last().expect("add_path reports the argument itself");
        if let Some(repo) = &repo {
            repo.store()
                .pin(&format!("add/{}", root.cid), root.cid)
                .await
                .with_context(|| format!("pinning {}", root.cid))?;
        }
        bar.suspend(|| {
            for entry in &added {
                if args.quieter && entry != root {
                    continue;
                }
                if args.quiet || args.quieter {
                    println!("{}", entry.cid);
                } else {
                    println!("added {} {}", entry.cid, entry.name);
                }
            }
        });
    }
    bar.finish_and_clear();
    if let Some(repo) = repo {
        repo.close().await?;
    }
    Ok(())
}

/// A progress bar on stderr for inputs large enough to be worth one (≥ 8 MiB).
fn progress_bar(total: u64, hidden: bool) -> indicatif::ProgressBar {
    const WORTH_SHOWING: u64 = 8 << 20;
    if hidden || total < WORTH_SHOWING {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template is valid"),
    );
    bar
}

impl SoundArgs {
    fn encoder_config(&self) -> anyhow::Result<ipfm_encoder::EncoderConfig> {
        let seconds = |v: f64, what: &str| {
            std::time::Duration::try_from_secs_f64(v)
                .with_context(|| format!("{what}: {v} is not a duration in seconds"))
        };
        Ok(ipfm_encoder::EncoderConfig {
            segment_target: seconds(self.segment_seconds, "--segment-seconds")?,
            crossfade: seconds(self.crossfade, "--crossfade")?,
            jingle_every: self.jingle_every,
            ..ipfm_encoder::EncoderConfig::default()
        })
    }
}

async fn render(args: RenderArgs) -> anyhow::Result<()> {
    let options = ipfm_node::render::RenderOptions {
        music: args.music,
        jingles: args.sound.jingles.clone(),
        out: args.out,
        encoder: args.sound.encoder_config()?,
    };
    let bar = if args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(0),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {msg} media, eta {eta}")
                .expect("static template is valid"),
        );
        bar
    };
    let progress = bar.clone();
    let report = ipfm_node::render::render(options, move |p| {
        progress.set_length(p.total.as_secs());
        progress.set_position(p.done.as_secs());
        progress.set_message(format!(
            "{}/{}",
            clock(p.done.as_secs()),
            clock(p.total.as_secs())
        ));
    })
    .await?;
    bar.finish_and_clear();
    for skipped in &report.skipped {
        eprintln!("skipped {skipped}");
    }
    println!("{}", report.root);
    Ok(())
}

fn clock(secs: u64) -> String {
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

async fn station(
    args: StationArgs,
    repo_path: impl Fn() -> Result<PathBuf, repo::RepoError>,
) -> anyhow::Result<()> {
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
    let config = ipfm_node::station::StationConfig {
        p2p: Some(args.p2p_config(resolved.ipns.clone())),
        api_token: Some(ipfm_node::api::ApiToken::new(repo.api_token()?)),
        ..resolved.station
    };
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

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
