//! One ipfm network node for `bench/net.py`, driven line by line: the same swarm and bitswap
//! the station runs, over the station's store (`Store::open`: block files, metadata in sled)
//! in a scratch directory, listening on loopback only.
//!
//! Usage: `net_bench [--memory-store | --sled-store]` (release build: `cargo build --release
//! -p ipfm-node --example net_bench`). `--memory-store` keeps blocks in memory instead, to
//! tell the network's cost from the store's (`bench/net.py` uses it for one diagnostic pair
//! only); `--sled-store` keeps block bytes inside sled, the layout before block files, for
//! comparing the two by hand.
//! One JSON command per line on stdin, one JSON answer per line on stdout (always with
//! `"ok": true/false`); the first line out is `{"ready": true, "peer_id", "addr"}`.
//! Commands:
//!
//! ```text
//! {"cmd": "add_file", "path": P}          -> {"cid", "blocks", "bytes"} (CIDv0, dag-pb leaves: Kubo's DAG)
//! {"cmd": "connect", "addr": MULTIADDR}   -> {"peer_id"}
//! {"cmd": "fetch_dag", "cid": C, "timeout": S, "check": BOOL}
//!                                         -> {"seconds", "blocks", "fetched", "bytes", "sha256"}
//!                                            ("check": false skips the sha256, for profiling)
//! {"cmd": "fetch_each", "cids": [C…], "timeout": S}
//!                                         -> {"latencies_ms": […]} (one get_block after another)
//! {"cmd": "ipns_publish", "sequence": N, "dht": BOOL}
//!                                         -> {"published_at", "stored_on"} (serve + gossip; DHT put if asked)
//! {"cmd": "ipns_resolve", "name": K51, "sequence": N, "timeout": S}
//!                                         -> {"resolved_at"} (over the DHT, until sequence ≥ N)
//! {"cmd": "ipns_wait", "name": K51, "sequence": N, "timeout": S}
//!                                         -> {"observed_at"} (until pubsub brought sequence ≥ N)
//! {"cmd": "ipns_topic_peers", "name": K51} -> {"peers": [...]}
//! {"cmd": "quit"}
//! ```
//!
//! `*_at` are Unix times in seconds (one clock: every process runs on the same host).
//!
//! Only the network part is timed: `sha256` (of the file read back from the store) is
//! computed after the clock stops, so a bench can check that the bytes arrived intact.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use cid::Cid;
use ed25519_dalek::SigningKey;
use ipfm_node::net::swarm::{keypair_from_ed25519, spawn, Client, NetworkConfig};
use ipfm_node::net::StoreBlocks;
use ipfm_protocol::builder::{build_file, read_file, CidMode};
use ipfm_protocol::ipns::{pubsub_topic, IpnsRecord};
use ipfm_protocol::peer::PeerId;
use ipfm_store::{BlockBackend, Blockstore, Store};
use libp2p::multiaddr::Protocol;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Blocks a fetched DAG may have: 100 MiB is ~400 leaves, so this only stops runaways.
const MAX_DAG_BLOCKS: usize = 1_000_000;
/// How often a waiter looks at the name cache for a record pushed over pubsub.
const PUBSUB_POLL: Duration = Duration::from_millis(1);
/// Lifetime and TTL of the benchmark's IPNS records.
const RECORD_LIFETIME: Duration = Duration::from_secs(3600);
const RECORD_TTL: Duration = Duration::from_secs(60);

struct BenchNode {
    client: Client,
    store: Store,
    /// The peer key, which is also the key of this node's IPNS name.
    key: SigningKey,
}

impl BenchNode {
    async fn handle(&self, request: &Value) -> anyhow::Result<Value> {
        let text = |key: &str| -> anyhow::Result<&str> {
            request[key]
                .as_str()
                .ok_or_else(|| anyhow!("missing string field {key:?}"))
        };
        let timeout = || Duration::from_secs_f64(request["timeout"].as_f64().unwrap_or(60.0));
        match request["cmd"].as_str() {
            Some("add_file") => self.add_file(text("path")?).await,
            Some("connect") => {
                let addr = text("addr")?.parse().context("multiaddr")?;
                let peer = self.client.dial(addr).await?;
                Ok(json!({"peer_id": peer.to_string()}))
            }
            Some("fetch_dag") => {
                let check = request["check"].as_bool().unwrap_or(true);
                self.fetch_dag(parse_cid(text("cid")?)?, timeout(), check)
                    .await
            }
            Some("fetch_each") => {
                let cids = request["cids"]
                    .as_array()
                    .ok_or_else(|| anyhow!("missing array field \"cids\""))?
                    .iter()
                    .map(|c| parse_cid(c.as_str().unwrap_or_default()))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                self.fetch_each(&cids, timeout()).await
            }
            Some("ipns_publish") => {
                let sequence = request["sequence"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("missing number field \"sequence\""))?;
                self.ipns_publish(sequence, request["dht"].as_bool().unwrap_or(false))
                    .await
            }
            Some("ipns_resolve") | Some("ipns_wait") => {
                let name: PeerId = text("name")?.parse().context("IPNS name")?;
                let sequence = request["sequence"].as_u64().unwrap_or(0);
                let deadline = Instant::now() + timeout();
                if request["cmd"] == "ipns_resolve" {
                    self.ipns_resolve(&name, sequence, deadline).await
                } else {
                    self.ipns_wait(&name, sequence, deadline).await
                }
            }
            Some("ipns_topic_peers") => {
                let name: PeerId = text("name")?.parse().context("IPNS name")?;
                let peers = self.client.topic_peers(&pubsub_topic(&name)).await?;
                let peers: Vec<String> = peers.iter().map(ToString::to_string).collect();
                Ok(json!({ "peers": peers }))
            }
            other => bail!("unknown command {other:?}"),
        }
    }

    async fn add_file(&self, path: &str) -> anyhow::Result<Value> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("reading {path}"))?;
        let (root, blocks) = build_file(&bytes, CidMode::V0DagPbLeaves);
        let count = blocks.len();
        for block in blocks {
            self.store.put(&block.cid, block.data).await?;
        }
        Ok(json!({"cid": root.cid.to_string(), "blocks": count, "bytes": root.size}))
    }

    async fn fetch_dag(&self, root: Cid, timeout: Duration, check: bool) -> anyhow::Result<Value> {
        let started = Instant::now();
        let fetched = self.client.fetch_dag(root, timeout, MAX_DAG_BLOCKS).await?;
        let seconds = started.elapsed().as_secs_f64();
        let sha256 = match check {
            true => Some(self.file_sha256(&root).await?),
            false => None,
        };
        Ok(json!({
            "seconds": seconds,
            "blocks": fetched.blocks,
            "fetched": fetched.fetched,
            "bytes": fetched.bytes,
            "sha256": sha256,
        }))
    }

    async fn fetch_each(&self, cids: &[Cid], timeout: Duration) -> anyhow::Result<Value> {
        let mut latencies = Vec::with_capacity(cids.len());
        for cid in cids {
            let started = Instant::now();
            self.client.get_block(*cid, timeout).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(json!({"latencies_ms": latencies}))
    }

    /// Sign a record for our name, serve and gossip it, and (with `dht`) put it to the DHT.
    async fn ipns_publish(&self, sequence: u64, dht: bool) -> anyhow::Result<Value> {
        let value = format!(
            "/ipfs/{}",
            ipfm_protocol::cid::raw_cid(&sequence.to_be_bytes())
        );
        let eol = SystemTime::now() + RECORD_LIFETIME;
        let record = IpnsRecord::create(&self.key, &value, sequence, eol, RECORD_TTL);
        let published_at = unix_now();
        self.client.serve_ipns_record(record.clone()).await?;
        let stored_on = if dht {
            self.client.put_ipns_record(record).await?
        } else {
            0
        };
        Ok(json!({"published_at": published_at, "stored_on": stored_on}))
    }

    /// Resolve `name` over the DHT until its record has at least `sequence`.
    async fn ipns_resolve(
        &self,
        name: &PeerId,
        sequence: u64,
        deadline: Instant,
    ) -> anyhow::Result<Value> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("sequence {sequence} not resolvable in time");
            }
            match self.client.resolve_ipns(name, left).await {
                Ok(record) if record.sequence() >= sequence => {
                    return Ok(json!({"resolved_at": unix_now(), "sequence": record.sequence()}))
                }
                // Not there yet (or an older record): ask again.
                Ok(_) | Err(_) => tokio::time::sleep(PUBSUB_POLL).await,
            }
        }
    }

    /// Wait until a record with at least `sequence` for `name` has arrived (over pubsub, for
    /// a name this node already follows).
    async fn ipns_wait(
        &self,
        name: &PeerId,
        sequence: u64,
        deadline: Instant,
    ) -> anyhow::Result<Value> {
        while Instant::now() < deadline {
            if let Some(record) = self.client.cached_ipns(name) {
                if record.sequence() >= sequence {
                    let at = unix_now();
                    return Ok(json!({"observed_at": at, "sequence": record.sequence()}));
                }
            }
            tokio::time::sleep(PUBSUB_POLL).await;
        }
        bail!("sequence {sequence} did not arrive in time")
    }

    /// The UnixFS file under `root`, read back out of the store.
    async fn file_sha256(&self, root: &Cid) -> anyhow::Result<String> {
        let mut blocks = HashMap::new();
        let mut queue = vec![*root];
        while let Some(cid) = queue.pop() {
            let data = self
                .store
                .get(&cid)
                .await?
                .ok_or_else(|| anyhow!("block {cid} missing after the fetch"))?;
            if cid.codec() == ipfm_protocol::cid::DAG_PB {
                queue.extend(ipfm_protocol::dagpb::links(&data)?);
            }
            blocks.insert(cid, data);
        }
        let bytes = read_file(root, |cid| blocks.get(cid).cloned())?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn parse_cid(text: &str) -> anyhow::Result<Cid> {
    Cid::try_from(text).with_context(|| format!("not a CID: {text:?}"))
}

fn reply(out: &mut impl Write, mut answer: Value) -> anyhow::Result<()> {
    if let Value::Object(map) = &mut answer {
        map.entry("ok").or_insert(Value::Bool(true));
    }
    writeln!(out, "{answer}")?;
    out.flush()?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("scratch directory")?;
    let store = match std::env::args().nth(1).as_deref() {
        None => Store::open(scratch.path().join("store")).await?,
        Some("--memory-store") => Store::open_in_memory(),
        Some("--sled-store") => {
            Store::open_with(scratch.path().join("store"), BlockBackend::Sled).await?
        }
        Some(other) => {
            bail!("unknown argument {other:?} (expected --memory-store or --sled-store)")
        }
    };
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut config = NetworkConfig::loopback(keypair_from_ed25519(&key));
    // Loopback only: the WAN DHT would keep no peer here anyway.
    config.wan_dht = false;
    let (client, _task) = spawn(config, StoreBlocks::shared(store.clone())).await?;
    let addr = client
        .listen_addrs()
        .await?
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
        .ok_or_else(|| anyhow!("no TCP listen address"))?
        .with(Protocol::P2p(client.peer_id()));
    let node = BenchNode { client, store, key };
    let mut out = std::io::stdout().lock();
    reply(
        &mut out,
        json!({
            "ready": true,
            "peer_id": node.client.peer_id().to_string(),
            "addr": addr.to_string(),
            "ipns_name": node.client.ipns_name().to_ipns_name(),
        }),
    )?;

    // Commands come one at a time, so reading stdin on this thread between them is fine.
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Value = match serde_json::from_str(&line) {
            Ok(request) => request,
            Err(error) => {
                reply(
                    &mut out,
                    json!({"ok": false, "error": format!("bad JSON: {error}")}),
                )?;
                continue;
            }
        };
        if request["cmd"] == "quit" {
            break;
        }
        let answer = match node.handle(&request).await {
            Ok(answer) => answer,
            Err(error) => json!({"ok": false, "error": format!("{error:#}")}),
        };
        reply(&mut out, answer)?;
    }
    node.client.shutdown().await?;
    node.store.flush().await?;
    Ok(())
}
