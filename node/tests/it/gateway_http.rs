//! The HTTP gateway end to end: fixtures built with the protocol builders into a
//! `MemoryBlockstore`, requests through the axum router (`tower::ServiceExt::oneshot`) and
//! over a real loopback listener, CARs checked with our parser and with npm `@ipld/car`.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use cid::Cid;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt;
use ipfm_node::gateway::{serve, BlockFetcher, BoxFuture, Gateway, GatewayConfig, LocalNames};
use ipfm_protocol::builder::{build_file, Block, CidMode, DirectoryBuilder};
use ipfm_protocol::car;
use ipfm_protocol::cid::{raw_cid, verify};
use ipfm_protocol::ipns::IpnsRecord;
use ipfm_protocol::peer::PeerId;
use ipfm_store::{Blockstore, MemoryBlockstore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// Generous for a loaded 2-core machine; nothing here takes more than milliseconds.
const TIMEOUT: Duration = Duration::from_secs(30);
const IMMUTABLE: &str = "public, max-age=29030400, immutable";
const BIG_LEN: usize = 700_000; // three 256 KiB chunks

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("gateway test step timed out")
}

/// Deterministic bytes that sniff as binary (a zero byte every 100).
fn binary_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if i % 100 == 0 {
                0
            } else {
                (state >> 24) as u8
            }
        })
        .collect()
}

/// The fixture tree:
///
/// ```text
/// root/
///   big.bin          700 000 binary bytes (multi-block file)
///   notes            UTF-8 text, no extension
///   seg.ts           a tiny transport-stream-like file
///   live.m3u8        a playlist
///   música ñ/my song.mp3
///   site/index.html, site/style.css
/// ```
struct Fixture {
    store: MemoryBlockstore,
    root: Cid,
    site: Cid,
    unicode_dir: Cid,
    big: Cid,
    big_bytes: Vec<u8>,
    /// Every block of the big file, in DFS order (root first).
    big_blocks: Vec<Cid>,
    song: Cid,
    song_bytes: Vec<u8>,
    raw: Cid,
    raw_bytes: Vec<u8>,
    v0_file: Cid,
    v0_bytes: Vec<u8>,
    /// Every block reachable from `root`.
    tree_blocks: HashSet<Cid>,
}

struct Builder {
    blocks: Vec<Block>,
}

impl Builder {
    fn file(&mut self, bytes: &[u8], mode: CidMode) -> (Cid, u64, Vec<Cid>) {
        let (root, blocks) = build_file(bytes, mode);
        let cids = blocks.iter().map(|b| b.cid).collect();
        self.blocks.extend(blocks);
        (root.cid, root.tsize, cids)
    }

    fn dir(&mut self, entries: &[(&str, Cid, u64)]) -> (Cid, u64) {
        let mut dir = DirectoryBuilder::new(CidMode::V1RawLeaves);
        for (name, cid, tsize) in entries {
            dir.add(name, *cid, *tsize).expect("valid entry");
        }
        let (root, block) = dir.finish();
        self.blocks.push(block);
        (root.cid, root.tsize)
    }
}

/// Order `cids` as a depth-first walk from `root` over dag-pb links would.
fn dfs_order(root: Cid, blocks: &HashMap<Cid, Vec<u8>>) -> Vec<Cid> {
    let mut order = Vec::new();
    let mut stack = vec![root];
    while let Some(cid) = stack.pop() {
        order.push(cid);
        if cid.codec() == ipfm_protocol::cid::DAG_PB {
            let links = ipfm_protocol::dagpb::links(&blocks[&cid]).expect("dag-pb");
            stack.extend(links.into_iter().rev());
        }
    }
    order
}

async fn fixture() -> Fixture {
    let mut b = Builder { blocks: Vec::new() };
    let big_bytes = binary_bytes(BIG_LEN);
    let (big, big_tsize, _) = b.file(&big_bytes, CidMode::V1RawLeaves);
    let (notes, notes_tsize, _) = b.file("plain words, ñ and ü\n".as_bytes(), CidMode::V1RawLeaves);
    let mut ts = vec![0u8; 376];
    ts[0] = 0x47;
    ts[188] = 0x47;
    let (seg, seg_tsize, _) = b.file(&ts, CidMode::V1RawLeaves);
    let (live, live_tsize, _) = b.file(b"#EXTM3U\n#EXT-X-VERSION:3\n", CidMode::V1RawLeaves);
    let song_bytes = b"ID3\x03\x00fake mp3 frames".to_vec();
    let (song, song_tsize, _) = b.file(&song_bytes, CidMode::V1RawLeaves);
    let (unicode_dir, unicode_tsize) = b.dir(&[("my song.mp3", song, song_tsize)]);
    let (index, index_tsize, _) =
        b.file(b"<html><body>station</body></html>", CidMode::V1RawLeaves);
    let (css, css_tsize, _) = b.file(b"body { color: red }", CidMode::V1RawLeaves);
    let (site, site_tsize) = b.dir(&[
        ("index.html", index, index_tsize),
        ("style.css", css, css_tsize),
    ]);
    let (root, _) = b.dir(&[
        ("big.bin", big, big_tsize),
        ("notes", notes, notes_tsize),
        ("seg.ts", seg, seg_tsize),
        ("live.m3u8", live, live_tsize),
        ("música ñ", unicode_dir, unicode_tsize),
        ("site", site, site_tsize),
    ]);
    let tree: HashMap<Cid, Vec<u8>> = b.blocks.iter().map(|b| (b.cid, b.data.clone())).collect();
    let tree_blocks = dfs_order(root, &tree).into_iter().collect();
    let big_blocks = dfs_order(big, &tree);

    let raw_bytes = b"a raw block, served as a file".to_vec();
    let raw = raw_cid(&raw_bytes);
    b.blocks.push(Block {
        cid: raw,
        data: raw_bytes.clone(),
    });
    let v0_bytes = binary_bytes(300_000);
    let (v0_file, _, _) = b.file(&v0_bytes, CidMode::V0DagPbLeaves);

    let store = MemoryBlockstore::new();
    for block in b.blocks {
        store.put(&block.cid, block.data).await.expect("put");
    }
    Fixture {
        store,
        root,
        site,
        unicode_dir,
        big,
        big_bytes,
        big_blocks,
        song,
        song_bytes,
        raw,
        raw_bytes,
        v0_file,
        v0_bytes,
        tree_blocks,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as a CAR (every block verified by the parser): its roots and the CIDs of
    /// its blocks in the order they came.
    fn car(&self) -> (Vec<Cid>, Vec<Cid>) {
        let (roots, blocks) = car::parse(&self.body)
            .unwrap_or_else(|e| panic!("not a valid CAR ({e}): {}", self.text()));
        (roots, blocks.into_iter().map(|(cid, _)| cid).collect())
    }
}

async fn send(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = within(app.clone().oneshot(request.body(Body::empty()).unwrap()))
        .await
        .expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = within(response.into_body().collect())
        .await
        .unwrap_or_else(|e| panic!("body of {uri} failed: {e}"))
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Method::GET, uri, &[]).await
}

/// A GET of `uri` with `If-None-Match: etag` must be answered 304.
async fn assert_not_modified(app: &Router, uri: &str, etag: &str) {
    let again = send(app, Method::GET, uri, &[("if-none-match", etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{uri} with {etag}");
}

fn app(f: &Fixture) -> Router {
    Gateway::new(f.store.clone()).router()
}

// ----------------------------------------------------------------------------- files

#[tokio::test]
async fn multi_block_file_bytes_and_headers() {
    let f = fixture().await;
    let app = app(&f);
    let uri = format!("/ipfs/{}/big.bin", f.root);
    let r = get(&app, &uri).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, f.big_bytes);
    assert_eq!(r.header("content-length"), BIG_LEN.to_string());
    assert_eq!(r.header("etag"), format!("\"{}\"", f.big));
    assert_eq!(r.header("cache-control"), IMMUTABLE);
    assert_eq!(r.header("x-ipfs-path"), uri);
    assert_eq!(r.header("x-ipfs-roots"), format!("{},{}", f.root, f.big));
    assert_eq!(r.header("content-type"), "application/octet-stream");
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("access-control-allow-origin"), "*");

    // The same file by its own CID, and a CIDv0 (Kubo-style, dag-pb leaves) file.
    let direct = get(&app, &format!("/ipfs/{}", f.big)).await;
    assert_eq!(direct.body, f.big_bytes);
    assert_eq!(direct.header("x-ipfs-roots"), f.big.to_string());
    let v0 = get(&app, &format!("/ipfs/{}", f.v0_file)).await;
    assert!(f.v0_file.to_string().starts_with("Qm"));
    assert_eq!(v0.status, StatusCode::OK);
    assert_eq!(v0.body, f.v0_bytes);

    let head = send(&app, Method::HEAD, &uri, &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), BIG_LEN.to_string());
    assert_eq!(head.header("etag"), format!("\"{}\"", f.big));
}

#[tokio::test]
async fn content_types_by_extension_and_sniffing() {
    let f = fixture().await;
    let app = app(&f);
    for (path, expected) in [
        ("live.m3u8", "application/vnd.apple.mpegurl"),
        ("seg.ts", "video/mp2t"),
        ("notes", "text/plain; charset=utf-8"),
        ("site/style.css", "text/css; charset=utf-8"),
        ("site/index.html", "text/html"),
        ("big.bin", "application/octet-stream"),
        ("m%C3%BAsica%20%C3%B1/my%20song.mp3", "audio/mpeg"),
    ] {
        let r = get(&app, &format!("/ipfs/{}/{path}", f.root)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("content-type"), expected, "{path}");
    }
    // A raw block is served as a file; no name, so its bytes decide.
    let raw = get(&app, &format!("/ipfs/{}", f.raw)).await;
    assert_eq!(raw.body, f.raw_bytes);
    assert_eq!(raw.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(raw.header("etag"), format!("\"{}\"", f.raw));
    // ?filename= names the download and decides the type.
    let named = get(
        &app,
        &format!("/ipfs/{}?filename=tune.mp3&download=true", f.raw),
    )
    .await;
    assert_eq!(named.header("content-type"), "audio/mpeg");
    assert_eq!(
        named.header("content-disposition"),
        "attachment; filename=\"tune.mp3\"; filename*=UTF-8''tune.mp3"
    );
}

#[tokio::test]
async fn unicode_and_space_names_are_traversed() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(
        &app,
        &format!("/ipfs/{}/m%C3%BAsica%20%C3%B1/my%20song.mp3", f.root),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, f.song_bytes);
    assert_eq!(
        r.header("x-ipfs-roots"),
        format!("{},{},{}", f.root, f.unicode_dir, f.song)
    );
}

#[tokio::test]
async fn if_none_match_gives_304() {
    let f = fixture().await;
    let app = app(&f);
    let uri = format!("/ipfs/{}/big.bin", f.root);
    let etag = format!("\"{}\"", f.big);
    for candidate in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
    ] {
        let r = send(&app, Method::GET, &uri, &[("if-none-match", &candidate)]).await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{candidate}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), etag);
        assert_eq!(r.header("cache-control"), IMMUTABLE);
    }
    let r = send(&app, Method::GET, &uri, &[("if-none-match", "\"stale\"")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), BIG_LEN);
}

#[tokio::test]
async fn range_requests() {
    let f = fixture().await;
    let app = app(&f);
    let uri = format!("/ipfs/{}/big.bin", f.root);
    // Across the first chunk boundary (262 144).
    let r = send(&app, Method::GET, &uri, &[("range", "bytes=262140-262150")]).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.header("content-range"),
        format!("bytes 262140-262150/{BIG_LEN}")
    );
    assert_eq!(r.header("content-length"), "11");
    assert_eq!(r.body, f.big_bytes[262_140..=262_150]);

    let tail = send(&app, Method::GET, &uri, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.body, f.big_bytes[BIG_LEN - 10..]);

    let open = send(&app, Method::GET, &uri, &[("range", "bytes=600000-")]).await;
    assert_eq!(open.body, f.big_bytes[600_000..]);

    let beyond = send(
        &app,
        Method::GET,
        &uri,
        &[("range", &format!("bytes={BIG_LEN}-"))],
    )
    .await;
    assert_eq!(beyond.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.header("content-range"), format!("bytes */{BIG_LEN}"));

    // A stale If-Range validator means "send it all".
    let stale = send(
        &app,
        Method::GET,
        &uri,
        &[("range", "bytes=0-9"), ("if-range", "\"old\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body.len(), BIG_LEN);

    // Ranges work on single raw blocks too.
    let raw = send(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.raw),
        &[("range", "bytes=2-4")],
    )
    .await;
    assert_eq!(raw.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(raw.body, f.raw_bytes[2..=4]);
}

#[tokio::test]
async fn missing_leaf_truncates_the_stream_with_an_error() {
    let f = fixture().await;
    // A copy of the store without the big file's last leaf.
    let store = MemoryBlockstore::new();
    let last_leaf = *f.big_blocks.last().unwrap();
    for cid in f.store.cids().await.unwrap() {
        if cid != last_leaf {
            let bytes = f.store.get(&cid).await.unwrap().unwrap();
            store.put(&cid, bytes).await.unwrap();
        }
    }
    let app = Gateway::new(store).router();
    let request = Request::get(format!("/ipfs/{}", f.big))
        .body(Body::empty())
        .unwrap();
    let response = within(app.oneshot(request)).await.unwrap();
    // The head went out before the walk reached the missing block...
    assert_eq!(response.status(), StatusCode::OK);
    // ...so the body must end in an error, never as a silently short 200.
    let body = within(response.into_body().collect()).await;
    assert!(body.is_err(), "a truncated file must not end cleanly");
}

// ----------------------------------------------------------------------------- directories

#[tokio::test]
async fn directories_redirect_serve_index_or_list() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(&app, &format!("/ipfs/{}/site?x=1", f.root)).await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header("location"), format!("/ipfs/{}/site/?x=1", f.root));
    let bare = get(&app, &format!("/ipfs/{}", f.root)).await;
    assert_eq!(bare.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(bare.header("location"), format!("/ipfs/{}/", f.root));

    let index = get(&app, &format!("/ipfs/{}/site/", f.root)).await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.body, b"<html><body>station</body></html>");
    assert_eq!(index.header("content-type"), "text/html");
    assert_eq!(index.header("etag"), format!("\"{}\"", f.site));
    assert_eq!(index.header("cache-control"), IMMUTABLE);

    let listing = get(&app, &format!("/ipfs/{}/", f.root)).await;
    assert_eq!(listing.status, StatusCode::OK);
    assert_eq!(listing.header("content-type"), "text/html");
    let page = listing.text();
    assert!(page.contains("href=\"m%C3%BAsica%20%C3%B1\""), "{page}");
    assert!(page.contains(">música ñ<"), "{page}");
    assert!(page.contains("href=\"big.bin\""));
    let etag = listing.header("etag").to_owned();
    assert!(etag.starts_with("\"DirIndex-"), "{etag}");
    assert!(etag.ends_with(&format!("_CID-{}\"", f.root)), "{etag}");
    assert_eq!(
        listing.header("cache-control"),
        "public, max-age=604800, stale-while-revalidate=2678400"
    );
    assert_not_modified(&app, &format!("/ipfs/{}/", f.root), &etag).await;
}

// ----------------------------------------------------------------------------- trustless

#[tokio::test]
async fn raw_block_responses() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(&app, &format!("/ipfs/{}?format=raw", f.root)).await;
    assert_eq!(r.status, StatusCode::OK);
    verify(&f.root, &r.body).expect("the body is the block");
    assert_eq!(r.header("content-type"), "application/vnd.ipld.raw");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("etag"), format!("\"{}.raw\"", f.root));
    assert_eq!(r.header("cache-control"), IMMUTABLE);
    assert_eq!(
        r.header("content-disposition"),
        format!(
            "attachment; filename=\"{0}.bin\"; filename*=UTF-8''{0}.bin",
            f.root
        )
    );
    assert!(r.headers.get("content-location").is_none());

    let by_accept = send(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.big),
        &[("accept", "application/vnd.ipld.raw")],
    )
    .await;
    verify(&f.big, &by_accept.body).expect("the body is the block");
    assert_eq!(
        by_accept.header("content-location"),
        format!("/ipfs/{}?format=raw", f.big)
    );

    // The empty identity block (the trustless gateway probe) needs no store.
    let probe = get(&app, "/ipfs/bafkqaaa?format=raw").await;
    assert_eq!(probe.status, StatusCode::OK);
    assert!(probe.body.is_empty());
}

#[tokio::test]
async fn car_of_the_whole_tree() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(&app, &format!("/ipfs/{}?format=car", f.root)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type"),
        "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    );
    assert_eq!(r.header("accept-ranges"), "none");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("cache-control"), IMMUTABLE);
    assert!(r
        .header("etag")
        .starts_with(&format!("W/\"{}.car.", f.root)));
    assert!(r
        .header("content-disposition")
        .starts_with(&format!("attachment; filename=\"{}.car\"", f.root)));

    let (roots, cids) = r.car();
    assert_eq!(roots, vec![f.root]);
    assert_eq!(cids[0], f.root);
    let unique: HashSet<Cid> = cids.iter().copied().collect();
    assert_eq!(unique.len(), cids.len(), "dups=n sends each block once");
    assert_eq!(
        unique, f.tree_blocks,
        "every block of the DAG, nothing else"
    );
    // Depth-first: the big file's blocks arrive together, root first, leaves in order.
    let start = cids.iter().position(|c| *c == f.big).unwrap();
    assert_eq!(cids[start..start + f.big_blocks.len()], f.big_blocks[..]);

    let by_accept = send(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.root),
        &[("accept", "application/vnd.ipld.car; version=1; order=dfs")],
    )
    .await;
    assert_eq!(by_accept.body, r.body, "same CAR either way");
    assert_eq!(
        by_accept.header("content-location"),
        format!("/ipfs/{}?format=car", f.root)
    );

    assert_not_modified(
        &app,
        &format!("/ipfs/{}?format=car", f.root),
        r.header("etag"),
    )
    .await;
}

#[tokio::test]
async fn car_of_a_path_proves_the_path() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(&app, &format!("/ipfs/{}/big.bin?format=car", f.root)).await;
    assert_eq!(r.status, StatusCode::OK);
    let (roots, cids) = r.car();
    assert_eq!(roots, vec![f.big]);
    let mut expected = vec![f.root];
    expected.extend(&f.big_blocks);
    assert_eq!(cids, expected);

    let scoped = get(
        &app,
        &format!("/ipfs/{}/big.bin?format=car&dag-scope=block", f.root),
    )
    .await;
    let (_, cids) = scoped.car();
    assert_eq!(cids, vec![f.root, f.big]);
    assert_ne!(scoped.header("etag"), r.header("etag"));

    // entity on a directory: just the directory block (after the path).
    let entity = get(
        &app,
        &format!("/ipfs/{}/site?format=car&dag-scope=entity", f.root),
    )
    .await;
    let (_, cids) = entity.car();
    assert_eq!(cids, vec![f.root, f.site]);
}

#[tokio::test]
async fn car_is_readable_by_npm_ipld_car() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(&app, &format!("/ipfs/{}?format=car", f.root)).await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, ours) = r.car();

    let interop = common::interop_dir();
    assert!(
        interop.join("node_modules/@ipld/car").exists(),
        "npm @ipld/car not installed: run `make deps` in the repository root"
    );
    let scratch = tempfile::tempdir().unwrap();
    let car_path = scratch.path().join("tree.car");
    std::fs::write(&car_path, &r.body).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(interop.join("gateway_car_check.mjs"))
        .arg(&car_path);
    let js = common::run(cmd, common::NODE_TIMEOUT)
        .expect_success()
        .json();
    assert_eq!(js["version"], 1);
    assert_eq!(js["roots"], serde_json::json!([f.root.to_string()]));
    let js_blocks: Vec<String> = serde_json::from_value(js["blocks"].clone()).unwrap();
    let ours: Vec<String> = ours.iter().map(Cid::to_string).collect();
    assert_eq!(js_blocks, ours);
}

// ----------------------------------------------------------------------------- IPNS

struct Station {
    key: SigningKey,
    name: PeerId,
    names: Arc<LocalNames>,
}

fn station(seed: u8) -> Station {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let name = PeerId::from_ed25519(&key.verifying_key());
    Station {
        key,
        name,
        names: Arc::new(LocalNames::new()),
    }
}

impl Station {
    /// Publishes `value` valid for `lifetime_secs`, cached for `ttl_secs`.
    fn publish(&self, value: &str, sequence: u64, lifetime_secs: u64, ttl_secs: u64) -> IpnsRecord {
        let record = IpnsRecord::create(
            &self.key,
            value,
            sequence,
            SystemTime::now() + Duration::from_secs(lifetime_secs),
            Duration::from_secs(ttl_secs),
        );
        assert!(self.names.publish(self.name, record.clone()).unwrap());
        record
    }

    /// A gateway over the fixture's store that resolves this station's name.
    fn gateway(&self, f: &Fixture) -> Router {
        Gateway::new(f.store.clone())
            .with_name_resolver(self.names.clone())
            .router()
    }
}

fn max_age(reply: &Reply) -> u64 {
    let value = reply.header("cache-control");
    value
        .strip_prefix("public, max-age=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected cache-control {value:?}"))
}

#[tokio::test]
async fn ipns_paths_resolve_through_the_station_record() {
    let f = fixture().await;
    let s = station(11);
    s.publish(&format!("/ipfs/{}", f.root), 1, 3600, 300);
    let app = s.gateway(&f);
    for name in [s.name.to_ipns_name(), s.name.to_base58()] {
        let uri = format!("/ipns/{name}/big.bin");
        let r = get(&app, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.body, f.big_bytes);
        let age = max_age(&r);
        assert!((295..=300).contains(&age), "max-age {age}");
        assert_eq!(r.header("etag"), format!("\"{}\"", f.big));
        assert_eq!(r.header("x-ipfs-path"), uri);
        assert_eq!(r.header("x-ipfs-roots"), format!("{},{}", f.root, f.big));
        assert!(r.headers.contains_key("last-modified"));
    }
    let dir = get(&app, &format!("/ipns/{}", s.name.to_ipns_name())).await;
    assert_eq!(dir.status, StatusCode::MOVED_PERMANENTLY);

    // A record whose EOL comes before its TTL runs out caps max-age at the EOL.
    let soon = station(12);
    soon.publish(&format!("/ipfs/{}/site", f.root), 1, 60, 3600);
    let app = soon.gateway(&f);
    let r = get(
        &app,
        &format!("/ipns/{}/style.css", soon.name.to_ipns_name()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body, b"body { color: red }");
    assert!(max_age(&r) <= 60);
}

#[tokio::test]
async fn ipns_record_responses() {
    let f = fixture().await;
    let s = station(13);
    s.publish(&format!("/ipfs/{}", f.root), 1, 3600, 30);
    let latest = s.publish(&format!("/ipfs/{}", f.site), 2, 3600, 30);
    let app = s.gateway(&f);
    let k51 = s.name.to_ipns_name();
    let r = get(&app, &format!("/ipns/{k51}?format=ipns-record")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, latest.to_bytes());
    let parsed = IpnsRecord::from_bytes(&r.body).unwrap();
    parsed.validate(&s.name, SystemTime::now()).unwrap();
    assert_eq!(parsed.sequence(), 2);
    assert_eq!(r.header("content-type"), "application/vnd.ipfs.ipns-record");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert!((28..=30).contains(&max_age(&r)));
    assert!(r
        .header("content-disposition")
        .starts_with(&format!("attachment; filename=\"{k51}.ipns-record\"")));

    let by_accept = send(
        &app,
        Method::GET,
        &format!("/ipns/{k51}"),
        &[("accept", "application/vnd.ipfs.ipns-record")],
    )
    .await;
    assert_eq!(by_accept.body, latest.to_bytes());
    assert_eq!(
        by_accept.header("content-location"),
        format!("/ipns/{k51}?format=ipns-record")
    );
    assert_not_modified(
        &app,
        &format!("/ipns/{k51}?format=ipns-record"),
        r.header("etag"),
    )
    .await;

    for bad in [
        format!("/ipns/{k51}/index.html?format=ipns-record"),
        format!("/ipfs/{}?format=ipns-record", f.root),
    ] {
        let r = get(&app, &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text().contains("ipns-record"), "{}", r.text());
    }
    let unknown = station(14).name.to_ipns_name();
    let r = get(&app, &format!("/ipns/{unknown}/")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains(&unknown), "{}", r.text());
    let r = get(&app, "/ipns/not-a-key/").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("not-a-key"), "{}", r.text());
    let r = get(&app, "/ipns/example.com/").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("DNSLink"), "{}", r.text());
}

// ----------------------------------------------------------------------------- errors, CORS, /

#[tokio::test]
async fn errors_name_what_went_wrong() {
    let f = fixture().await;
    let app = app(&f);
    let r = get(&app, "/ipfs/not-a-cid").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .starts_with("400 Bad Request: invalid CID \"not-a-cid\""),
        "{}",
        r.text()
    );
    assert_eq!(r.header("access-control-allow-origin"), "*");

    let r = get(&app, &format!("/ipfs/{}/no%20such%20file", f.root)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("\"no such file\""), "{}", r.text());
    assert!(r.text().contains(&f.root.to_string()), "{}", r.text());

    let absent = raw_cid(b"never stored");
    let r = get(&app, &format!("/ipfs/{absent}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains(&absent.to_string()), "{}", r.text());

    let r = get(&app, &format!("/ipfs/{}/big.bin/deeper", f.root)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = get(&app, &format!("/ipfs/{}?format=tar", f.root)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("\"tar\""), "{}", r.text());
    let r = send(
        &app,
        Method::GET,
        &format!("/ipfs/{}", f.root),
        &[("accept", "application/vnd.ipld.dag-json")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&app, &format!("/ipfs/{}?format=car&car-version=2", f.root)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&app, "/ipfs/").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = get(&app, &format!("/ipfs/{}/%ZZ", f.root)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = send(&app, Method::POST, &format!("/ipfs/{}", f.root), &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn cors_preflight_and_root_redirect() {
    let f = fixture().await;
    let app = app(&f);
    let r = send(
        &app,
        Method::OPTIONS,
        &format!("/ipfs/{}/big.bin", f.root),
        &[
            ("origin", "https://example.net"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "range"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("access-control-allow-origin"), "*");
    assert!(r.header("access-control-allow-methods").contains("GET"));
    assert!(r.header("access-control-allow-headers").contains("Range"));
    assert!(r
        .header("access-control-expose-headers")
        .contains("Content-Range"));

    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("no default path"), "{}", r.text());

    let player = format!("/ipns/{}/", station(15).name.to_ipns_name());
    let app = Gateway::new(f.store.clone())
        .with_config(GatewayConfig {
            root_redirect: Some(player.clone()),
            ..GatewayConfig::default()
        })
        .router();
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.header("location"), player);
}

// ----------------------------------------------------------------------------- fetcher hook

/// A fetcher holding blocks the store lacks; `lie` corrupts what it returns.
struct MapFetcher {
    blocks: HashMap<Cid, Vec<u8>>,
    lie: bool,
}

impl BlockFetcher for MapFetcher {
    fn fetch<'a>(&'a self, cid: &'a Cid) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut bytes = self.blocks.get(cid).cloned()?;
            if self.lie {
                bytes.push(b'!');
            }
            Some(bytes)
        })
    }
}

#[tokio::test]
async fn fetcher_fills_in_and_is_verified() {
    let f = fixture().await;
    let remote = b"only the network has this".to_vec();
    let cid = raw_cid(&remote);
    for (lie, status) in [
        (false, StatusCode::OK),
        (true, StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let fetcher = MapFetcher {
            blocks: HashMap::from([(cid, remote.clone())]),
            lie,
        };
        let app = Gateway::new(f.store.clone())
            .with_block_fetcher(Arc::new(fetcher))
            .router();
        let r = get(&app, &format!("/ipfs/{cid}")).await;
        assert_eq!(r.status, status, "{}", r.text());
        if lie {
            assert!(r.text().contains("corrupt"), "{}", r.text());
        } else {
            assert_eq!(r.body, remote);
        }
        // only-if-cached: the block is not local, so 412 without asking the network.
        let r = send(
            &app,
            Method::GET,
            &format!("/ipfs/{cid}"),
            &[("cache-control", "only-if-cached")],
        )
        .await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    }
}

// ----------------------------------------------------------------------------- hash on read

/// A store whose disk rotted under it: `get` returns the stored bytes with one bit flipped.
#[derive(Clone)]
struct BitRot(MemoryBlockstore);

impl Blockstore for BitRot {
    async fn get(&self, cid: &Cid) -> ipfm_store::Result<Option<Vec<u8>>> {
        Ok(self.0.get(cid).await?.map(|mut bytes| {
            if let Some(first) = bytes.first_mut() {
                *first ^= 1;
            }
            bytes
        }))
    }
    async fn put(&self, cid: &Cid, bytes: Vec<u8>) -> ipfm_store::Result<()> {
        self.0.put(cid, bytes).await
    }
    async fn put_verified(&self, cid: &Cid, bytes: Vec<u8>) -> ipfm_store::Result<()> {
        self.0.put_verified(cid, bytes).await
    }
    async fn has(&self, cid: &Cid) -> ipfm_store::Result<bool> {
        self.0.has(cid).await
    }
    async fn delete(&self, cid: &Cid) -> ipfm_store::Result<bool> {
        self.0.delete(cid).await
    }
    async fn block_info(&self, cid: &Cid) -> ipfm_store::Result<Option<ipfm_store::BlockInfo>> {
        self.0.block_info(cid).await
    }
    async fn blocks(&self) -> ipfm_store::Result<Vec<ipfm_store::BlockInfo>> {
        self.0.blocks().await
    }
    async fn delete_if_inserted_before(
        &self,
        cid: &Cid,
        cutoff: SystemTime,
    ) -> ipfm_store::Result<Option<u64>> {
        self.0.delete_if_inserted_before(cid, cutoff).await
    }
}

#[tokio::test]
async fn hash_on_read_catches_a_rotten_store_block() {
    let store = MemoryBlockstore::new();
    let bytes = b"a segment on a failing disk".to_vec();
    let cid = raw_cid(&bytes);
    store.put(&cid, bytes.clone()).await.unwrap();
    let rotten = BitRot(store);
    let uri = format!("/ipfs/{cid}");

    // Kubo's default: the store verified the block when it was put; serve it as stored.
    let trusting = Gateway::new(rotten.clone()).router();
    let r = get(&trusting, &uri).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.body, bytes, "the rot reaches the client unchecked");

    let checking = Gateway::new(rotten)
        .with_config(GatewayConfig {
            hash_on_read: true,
            ..GatewayConfig::default()
        })
        .router();
    let r = get(&checking, &uri).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text());
    assert!(r.text().contains("corrupt"), "{}", r.text());
}

// ----------------------------------------------------------------------------- real socket

/// Send one HTTP/1.1 request on a fresh connection and read the whole response.
async fn raw_http(addr: std::net::SocketAddr, request: &str) -> (String, Vec<u8>) {
    let mut stream = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    (head, response[split + 4..].to_vec())
}

#[tokio::test]
async fn serves_over_loopback_and_shuts_down() {
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(&f), async {
        let _ = stopped.await;
    }));

    let path = format!("/ipfs/{}/big.bin", f.root);
    let (head, body) = raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {BIG_LEN}")),
        "{head}"
    );
    assert_eq!(body, f.big_bytes);

    let (head, body) = raw_http(
        addr,
        &format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {BIG_LEN}")),
        "{head}"
    );
    assert!(body.is_empty());

    let (head, body) = raw_http(
        addr,
        &format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nRange: bytes=10-19\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, f.big_bytes[10..20]);

    stop.send(()).unwrap();
    within(server).await.unwrap().expect("server ends cleanly");
}

#[tokio::test]
async fn serves_from_the_sled_backed_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = within(ipfm_store::Store::open(dir.path().join("repo")))
        .await
        .expect("open store");
    let bytes = binary_bytes(300_000);
    let (root, blocks) = build_file(&bytes, CidMode::V1RawLeaves);
    for block in blocks {
        within(store.put(&block.cid, block.data)).await.unwrap();
    }
    let app = Gateway::new(store).router();
    let r = get(&app, &format!("/ipfs/{}", root.cid)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, bytes);
}

#[tokio::test]
async fn car_entity_bytes_sends_only_the_blocks_of_the_range() {
    let f = fixture().await;
    let app = app(&f);
    // big.bin: root node, then leaves of 262 144, 262 144 and 175 712 bytes.
    let (big_root, leaves) = (f.big_blocks[0], &f.big_blocks[1..]);
    assert_eq!(leaves.len(), 3);
    let mut etags = HashSet::new();
    for (range, expected_leaves) in [
        ("0:99", vec![leaves[0]]),
        ("-10:*", vec![leaves[2]]),
        ("262143:262144", vec![leaves[0], leaves[1]]),
        ("300000:-200000", vec![leaves[1]]),
        ("0:*", leaves.to_vec()),
        ("5:1", vec![]),
    ] {
        let uri = format!("/ipfs/{}/big.bin?format=car&entity-bytes={range}", f.root);
        let r = get(&app, &uri).await;
        assert_eq!(r.status, StatusCode::OK, "{range}: {}", r.text());
        let (roots, cids) = r.car();
        assert_eq!(roots, vec![f.big]);
        let mut expected = vec![f.root, big_root];
        expected.extend(expected_leaves);
        assert_eq!(cids, expected, "entity-bytes={range}");
        assert!(
            etags.insert(r.header("etag").to_owned()),
            "etag varies with the range"
        );
    }
    let past = get(
        &app,
        &format!(
            "/ipfs/{}/big.bin?format=car&entity-bytes={BIG_LEN}:*",
            f.root
        ),
    )
    .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST);
    assert!(past.text().contains("past the end"), "{}", past.text());
    let malformed = get(&app, &format!("/ipfs/{}?format=car&entity-bytes=x", f.root)).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    // On a directory entity-bytes is ignored: the directory block only (dag-scope=entity).
    let dir = get(
        &app,
        &format!("/ipfs/{}/site?format=car&entity-bytes=0:10", f.root),
    )
    .await;
    let (_, cids) = dir.car();
    assert_eq!(cids, vec![f.root, f.site]);
}
