//! `ipfm init` and `ipfm key`: the repository and the station's identity.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use ipfm_node::repo::Repo;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Print the peer id and the station's IPNS name.
    Show,
    /// Write the station key to FILE (libp2p protobuf, as `ipfs key export`), mode 0600.
    Export {
        /// Destination file; must not exist yet.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// `ipfm init`: creates the repository at `path`, or keeps the one there.
pub async fn init(path: &Path) -> anyhow::Result<()> {
    let init = Repo::init(path).await?;
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
    Ok(())
}

/// `ipfm key …` on the repository at `path`.
pub async fn run(command: KeyCommand, path: &Path) -> anyhow::Result<()> {
    let repo = Repo::open(path).await?;
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
    Ok(())
}

fn print_identity(peer: &ipfm_protocol::peer::PeerId) {
    println!("peer id:   {peer}");
    println!("IPNS name: {}", peer.to_ipns_name());
}
