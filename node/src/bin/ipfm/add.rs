//! `ipfm add`: files and directories into the store as UnixFS, like `ipfs add`.

use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use ipfm_node::import::{self, ImportOptions, OnlyHash};
use ipfm_node::repo::Repo;
use ipfm_protocol::builder::CidMode;

use crate::shared::{progress_bar, RepoPath};

#[derive(clap::Args)]
pub struct AddArgs {
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

/// Inputs smaller than this are added before a progress bar would be worth reading.
const PROGRESS_WORTH_SHOWING: u64 = 8 << 20;

pub async fn run(args: AddArgs, repo_path: impl RepoPath) -> anyhow::Result<()> {
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
    let bar = progress_bar(
        total,
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        args.no_progress || args.quiet || args.quieter || total < PROGRESS_WORTH_SHOWING,
    );
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
