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
    /// Follow a station peer to peer and play it: MPEG-TS on stdout (`| mpv -`, `| ffplay -`)
    /// or a local HLS endpoint with --serve.
    Listen(Box<ListenArgs>),
    /// Follow a station and re-serve it: fetch and pin every announced root, serve it on
    /// this node's gateway, provide it, and keep the station's name resolvable.
    Relay(Box<RelayArgs>),
}

/// `ipfm relay` flags.
#[derive(clap::Args)]
struct RelayArgs {
    /// The station: IPNS name (k51…), peer id, or a multiaddr ending in /p2p/<id> (dialled
    /// first).
    #[arg(value_name = "STATION")]
    station: String,
    /// Gateway listen address (serves /ipns/<station>/…, /api/v1/relay, /healthz).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    peer: PeerArgs,
    /// Seconds that superseded roots stay pinned (and their blocks stored).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    retention_secs: u64,
    /// Log format on stderr: text or json.
    #[arg(long, default_value = "text")]
    log_format: LogFormat,
}

/// The libp2p flags of the nodes that follow a station (`relay`, `listen`).
#[derive(clap::Args)]
struct PeerArgs {
    /// libp2p listen address (repeatable) [default: relay: TCP and QUIC on port 4002
    /// (beside a station's 4001); listen: TCP and QUIC on kernel-chosen ports].
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
    /// The network settings these flags give: `default_listen` unless addresses were
    /// given, the public bootstrap peers unless refused, plus the extra ones.
    fn p2p_config(self, default_listen: &[&str]) -> ipfm_node::station::network::P2pConfig {
        let mut p2p = ipfm_node::station::network::P2pConfig::public();
        p2p.listen = if self.p2p_listen.is_empty() {
            default_listen
                .iter()
                .map(|a| a.parse().expect("built-in multiaddrs are valid"))
                .collect()
        } else {
            self.p2p_listen
        };
        if self.no_default_bootstrap {
            p2p.bootstrap.clear();
        }
        p2p.bootstrap.extend(self.bootstrap);
        p2p
    }
}

/// The relay's libp2p ports unless told otherwise: next to a station's 4001.
const RELAY_P2P_DEFAULT: [&str; 2] = ["/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"];

/// `ipfm listen` flags.
#[derive(clap::Args)]
struct ListenArgs {
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

fn main() -> ExitCode {
    limit_malloc_arenas();
    // What `#[tokio::main]` expands to, written out so the line above runs before the
    // runtime's worker threads exist.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("Error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main())
}

/// glibc gives each thread that contends on malloc its own arena (up to 8 per core), and
/// each arena keeps its freed memory: with the station's ~20 threads that is several MB of
/// resident heap for no speed we can measure (docs/benchmarks.md, station memory notes).
/// Two arenas, like `MALLOC_ARENA_MAX=2`; an explicit `MALLOC_ARENA_MAX` still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets a glibc allocator parameter; it is called before any other
    // thread of this process exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    // `station` picks its log format from its settings, once they are merged.
    if !matches!(cli.command, Command::Station(_) | Command::Relay(_)) {
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
        Command::Listen(args) => listen(*args).await?,
        Command::Relay(args) => relay(*args, repo_path).await?,
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

async fn relay(
    args: RelayArgs,
    repo_path: impl Fn() -> Result<PathBuf, repo::RepoError>,
) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let target = ipfm_node::listen::StationTarget::parse(&args.station)
        .with_context(|| format!("STATION {:?}", args.station))?;
    let p2p = args.peer.p2p_config(&RELAY_P2P_DEFAULT);
    let mut config = ipfm_node::relay::RelayConfig::new(target.station, p2p);
    config.follow.start_addrs.extend(target.dial);
    config.retention = std::time::Duration::from_secs(args.retention_secs);
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

/// The listener's own libp2p ports: kernel-chosen, so it runs beside a local station.
const LISTEN_P2P_DEFAULT: [&str; 2] = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"];

async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    use ipfm_node::listen::{self, ListenConfig, ListenEnd, ListenOutput, StartAt, StationTarget};
    use std::io::IsTerminal;

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
    };
    let mut stdout = tokio::io::stdout();
    let mut stderr = std::io::stderr();
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot wait for Ctrl-C; stop with a signal instead");
            std::future::pending::<()>().await;
        }
    };
    let end = listen::run(config, &mut stdout, &mut stderr, ctrl_c).await?;
    match end {
        ListenEnd::ReaderClosed => eprintln!("the player closed the stream; stopped listening"),
        ListenEnd::Shutdown => eprintln!("stopped listening"),
        ListenEnd::FollowerStopped => anyhow::bail!("following the station stopped unexpectedly"),
    }
    Ok(())
}
