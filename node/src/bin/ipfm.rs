//! `ipfm`: the command-line front of the ipfm node library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
