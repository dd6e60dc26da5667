//! `ipfm`: the command-line front of the ipfm node library.
//!
//! One module per subcommand (its flags and what it runs); `shared` holds what several of
//! them use: the libp2p flags of the following nodes, logging and the shutdown signal.

mod add;
mod key;
mod listen;
mod relay;
mod render;
mod shared;
mod station;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipfm_node::config::LogFormat;
use ipfm_node::repo;

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
    Add(add::AddArgs),
    /// Show or export the station key.
    Key {
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Play MUSIC_DIR once through into OUT_DIR as VOD HLS; prints OUT_DIR's root CID.
    Render(render::RenderArgs),
    /// Run the live station: encode, publish under the station's IPNS name, serve the gateway.
    // Boxed: its many optional flags make it far larger than the other variants.
    Station(Box<station::StationArgs>),
    /// Follow a station peer to peer and play it: MPEG-TS on stdout (`| mpv -`, `| ffplay -`)
    /// or a local HLS endpoint with --serve.
    Listen(Box<listen::ListenArgs>),
    /// Follow a station and re-serve it: fetch and pin every announced root, serve it on
    /// this node's gateway, provide it, and keep the station's name resolvable.
    Relay(Box<relay::RelayArgs>),
}

fn main() -> ExitCode {
    tune_malloc();
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

/// Two glibc malloc settings that keep the station's resident heap small (docs/benchmarks.md,
/// station memory notes); an explicit `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` in the
/// environment still wins.
///
/// - Arenas: glibc gives each thread that contends on malloc its own arena (up to 8 per
///   core), and each arena keeps its freed memory: with the station's ~20 threads that is
///   several MB for no speed we can measure. Two, like `MALLOC_ARENA_MAX=2`.
/// - mmap threshold: glibc serves blocks of 128 KiB and more with their own mapping, given
///   back when freed, but raises that threshold to the size of every such block freed. The
///   station frees one every segment (the encoder's 750-KiB sample buffers, the store's
///   write buffers), so after the first its large blocks land in the arenas and the freed
///   space stays resident between them. Setting the threshold fixes it at 128 KiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    /// glibc's initial value, made fixed.
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    let settings = [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
        (
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        ),
    ];
    for (variable, param, value) in settings {
        if std::env::var_os(variable).is_some() {
            continue;
        }
        // SAFETY: mallopt only sets a glibc allocator parameter; it is called before any
        // other thread of this process exists.
        if unsafe { libc::mallopt(param, value) } != 1 {
            eprintln!("warning: glibc refused the malloc setting {variable}={value}");
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    // `station` picks its log format from its settings, once they are merged.
    if !matches!(cli.command, Command::Station(_) | Command::Relay(_)) {
        shared::init_logging(LogFormat::Text);
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
        Command::Init => key::init(&repo_path()?).await,
        Command::Add(args) => add::run(args, repo_path).await,
        Command::Render(args) => render::run(args).await,
        Command::Station(args) => station::run(*args, repo_path).await,
        Command::Listen(args) => listen::run(*args).await,
        Command::Relay(args) => relay::run(*args, repo_path).await,
        Command::Key { command } => key::run(command, &repo_path()?).await,
    }
}
