//! The ipfm repository: a directory holding the sled store (blocks, pins, station state)
//! and the API token. `ipfm init` creates it; every other command opens it.

use std::io::Write;
use std::path::{Path, PathBuf};

use ipfm_protocol::peer::PeerId;

/// Environment variable that overrides the default repository path.
pub const REPO_ENV: &str = "IPFM_REPO";
const DB_DIR: &str = "db";
const TOKEN_FILE: &str = "api-token";
const SPILL_DIR: &str = "spill";

/// Why a repository could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("no ipfm repository at {0}: run `ipfm init` first (or pass --repo)")]
    NotInitialised(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    // The source is not repeated in the message: `{:#}` (anyhow) prints the chain.
    #[error("store at {path}")]
    Store {
        path: PathBuf,
        source: ipfm_store::StoreError,
    },
    #[error(
        "cannot find a home directory for the default repository; pass --repo or set {REPO_ENV}"
    )]
    NoHome,
}

/// `--repo`, else `$IPFM_REPO`, else `~/.ipfm`.
pub fn default_path(flag: Option<PathBuf>) -> Result<PathBuf, RepoError> {
    if let Some(path) = flag {
        return Ok(path);
    }
    if let Some(path) = std::env::var_os(REPO_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(RepoError::NoHome)?;
    Ok(PathBuf::from(home).join(".ipfm"))
}

/// An open repository.
pub struct Repo {
    path: PathBuf,
    store: ipfm_store::Store,
}

/// What `init` did.
pub struct Initialised {
    pub repo: Repo,
    /// False when the repository already existed (init is idempotent and keeps the key).
    pub created: bool,
}

impl Repo {
    /// Create the repository (store, station key, API token) if it does not exist yet.
    pub async fn init(path: &Path) -> Result<Initialised, RepoError> {
        let created = !path.join(DB_DIR).exists();
        std::fs::create_dir_all(path).map_err(|source| RepoError::Io {
            path: path.into(),
            source,
        })?;
        restrict_permissions(path, 0o700)?;
        let repo = Self::open_store(path).await?;
        repo.store
            .load_or_create_key()
            .await
            .map_err(|source| RepoError::Store {
                path: path.into(),
                source,
            })?;
        repo.export_api_token().await?;
        Ok(Initialised { repo, created })
    }

    /// Open an existing repository.
    pub async fn open(path: &Path) -> Result<Repo, RepoError> {
        if !path.join(DB_DIR).exists() {
            return Err(RepoError::NotInitialised(path.into()));
        }
        Self::open_store(path).await
    }

    async fn open_store(path: &Path) -> Result<Repo, RepoError> {
        let db = path.join(DB_DIR);
        let store = ipfm_store::Store::open(&db)
            .await
            .map_err(|source| RepoError::Store {
                path: db.clone(),
                source,
            })?;
        Ok(Repo {
            path: path.into(),
            store,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn store(&self) -> &ipfm_store::Store {
        &self.store
    }

    /// The station's peer id (the IPNS name is derived from it).
    pub async fn peer_id(&self) -> Result<PeerId, RepoError> {
        let key = self
            .store
            .load_or_create_key()
            .await
            .map_err(|source| RepoError::Store {
                path: self.path.clone(),
                source,
            })?;
        Ok(PeerId::from_ed25519(&key.verifying_key()))
    }

    /// The bearer token for mutating API calls (created by `init`, file mode 0600).
    pub fn api_token(&self) -> Result<String, RepoError> {
        let path = self.path.join(TOKEN_FILE);
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_owned())
            .map_err(|source| RepoError::Io { path, source })
    }

    /// Where the encoder spills decoded sources between decode and playout (≈ 11.5 MB a
    /// minute, two sources at a time, in files unlinked at creation), created if missing.
    /// Inside the repository rather than the system temp dir: on a tmpfs `/tmp` (Debian
    /// 13's default) the spill would be RAM that no RSS figure shows.
    pub fn spill_dir(&self) -> Result<PathBuf, RepoError> {
        let path = self.path.join(SPILL_DIR);
        std::fs::create_dir_all(&path).map_err(|source| RepoError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// The token lives in the store; `init` also writes it to `api-token` (mode 0600) so
    /// operators and scripts can read it without opening the database.
    async fn export_api_token(&self) -> Result<(), RepoError> {
        let path = self.path.join(TOKEN_FILE);
        if path.exists() {
            return Ok(());
        }
        let token = self
            .store
            .load_or_create_api_token()
            .await
            .map_err(|source| RepoError::Store {
                path: self.path.clone(),
                source,
            })?;
        write_private(&path, format!("{token}\n").as_bytes())
    }

    /// Flush everything to disk (called before exit).
    pub async fn close(self) -> Result<(), RepoError> {
        self.store.flush().await.map_err(|source| RepoError::Store {
            path: self.path.clone(),
            source,
        })
    }
}

/// Write a file readable by its owner only (0600), created that way rather than chmod-ed
/// afterwards, so the secret is never briefly world-readable.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let io_err = |source| RepoError::Io {
        path: path.into(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_err)?;
    file.write_all(bytes).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    restrict_permissions(path, 0o600)
}

fn restrict_permissions(path: &Path, mode: u32) -> Result<(), RepoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
            |source| RepoError::Io {
                path: path.into(),
                source,
            },
        )?;
    }
    let _ = (path, mode);
    Ok(())
}
