// Helia 7 as a client of a running ipfm station, over loopback only.
//
//   node --import ../node20-polyfills.mjs station_client.mjs MODE STATION_MULTIADDR TARGET TIMEOUT_MS
//
// The station's multiaddr (…/p2p/<id>) is the node's only peer: no bootstrap list, no mDNS,
// no HTTP routers. MODE:
//   bitswap CID         fetch one block over bitswap; print its length, sha256 and whether it
//                       hashes to CID's multihash
//   dht-ipns NAME       resolve /ipns/NAME through the DHT only (@helia/ipns over Helia's
//                       libp2p routing = kad-dht GET_VALUE), then cat ROOT/master.m3u8 with
//                       @helia/unixfs
//   pubsub-ipns NAME    subscribe to the name's IPNS-over-pubsub topic (Kubo's /record/…) once
//                       the station is on it (the router's first get fetches the current
//                       record from it over /libp2p/fetch), wait for the station's next
//                       publication, resolve it from what pubsub delivered (the DHT is never
//                       asked), then cat ROOT/master.m3u8
//   verified-fetch NAME @helia/verified-fetch: ipns://NAME/master.m3u8, the first variant
//                       playlist it lists, and the newest segment that one lists
//
// Prints one JSON line on stdout ({"ok":true,…} and exit 0, or {"ok":false,"stage","error"}
// and exit 1; exit 3 when TIMEOUT_MS passed, exit 2 on usage errors). Diagnostics go to stderr.
import { createHash } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { peerIdFromString } from '@libp2p/peer-id'
import { ipns, pubSubIPNSRouting, multihashToIPNSRoutingKey } from '@helia/ipns'
import { unixfs } from '@helia/unixfs'
import { createVerifiedFetch } from '@helia/verified-fetch'
import { unmarshalIPNSRecord } from 'ipns'
import { ipnsValidator } from 'ipns/validator'
import { makeNode } from './node.mjs'

const [mode, stationAddr, target, timeoutArg] = process.argv.slice(2)
const timeoutMs = Number(timeoutArg)
if (mode == null || stationAddr == null || target == null || !(timeoutMs > 0)) {
  console.error('usage: station_client.mjs bitswap|dht-ipns|pubsub-ipns|verified-fetch STATION_MULTIADDR CID|NAME TIMEOUT_MS')
  process.exit(2)
}

const started = performance.now()
const elapsedMs = () => Math.round(performance.now() - started)
let stage = 'start'
const log = (...args) => console.error(`[${elapsedMs()} ms] ${stage}:`, ...args)
const print = (result) => process.stdout.write(JSON.stringify(result) + '\n')

// Everything below runs under this one deadline; the Rust side kills us later than that.
const deadline = AbortSignal.timeout(timeoutMs)
const killer = setTimeout(() => {
  print({ ok: false, stage, error: `timed out after ${timeoutMs} ms` })
  process.exit(3)
}, timeoutMs + 2000)
killer.unref()

const sha256Hex = (bytes) => createHash('sha256').update(bytes).digest('hex')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function collect (chunks) {
  const parts = []
  for await (const chunk of chunks) parts.push(chunk)
  return Buffer.concat(parts)
}

/** Whether `bytes` hash to `cid`'s sha2-256 multihash. */
async function hashesTo (cid, bytes) {
  const digest = await sha256.digest(bytes)
  return cid.multihash.code === sha256.code &&
    Buffer.compare(Buffer.from(digest.bytes), Buffer.from(cid.multihash.bytes)) === 0
}

/** The URIs (non-comment lines) of an m3u8 playlist. */
const playlistUris = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))

/** `/ipfs/<cid>[/path]` → CID */
function rootOf (value) {
  const match = /^\/ipfs\/([^/]+)/.exec(value)
  if (match == null) throw new Error(`IPNS value is not an /ipfs/ path: ${value}`)
  return CID.parse(match[1])
}

/** Retry `attempt` until it succeeds or the deadline passes; the last error is thrown. */
async function retryUntilDeadline (attempt, pauseMs = 500) {
  let attempts = 0
  for (;;) {
    attempts++
    try {
      return { value: await attempt(), attempts }
    } catch (err) {
      if (deadline.aborted) throw new Error(`${attempts} attempts, last: ${err.message ?? err}`)
      log(`attempt ${attempts} failed: ${err.message ?? err}`)
      await sleep(pauseMs)
    }
  }
}

/** The cat of ROOT/master.m3u8 over bitswap, as text. */
async function catMaster (helia, root) {
  const bytes = await collect(unixfs(helia).cat(root, { path: 'master.m3u8', signal: deadline }))
  return bytes.toString('utf8')
}

/** Wait (bounded by the deadline) until the DHT has the station in its routing table. */
async function waitForDhtPeer (helia, stationPeer) {
  const dht = helia.libp2p.services.dht
  while (!deadline.aborted) {
    // kad-dht queries start from its routing table; the station enters it once identify
    // has shown that both speak the same DHT protocol.
    if (dht.routingTable.size > 0) return
    await sleep(100)
  }
  throw new Error(`the station ${stationPeer} never entered the DHT routing table (protocol not shared?)`)
}

async function bitswap (helia) {
  stage = 'bitswap get'
  const cid = CID.parse(target)
  // Helia 7's blockstore yields a block as chunks.
  const bytes = await collect(helia.blockstore.get(cid, { signal: deadline }))
  return { cid: cid.toString(), len: bytes.length, sha256: sha256Hex(bytes), verified: await hashesTo(cid, bytes) }
}

async function dhtIpns (helia, stationPeer) {
  stage = 'waiting for the DHT routing table'
  await waitForDhtPeer(helia, stationPeer)
  stage = 'DHT resolve'
  // @helia/ipns always asks Helia's routing (here: only libp2p's kad-dht) besides its cache,
  // which is empty in a fresh node.
  const name = ipns(helia)
  const key = peerIdFromString(target).toMultihash()
  const { value: result, attempts } = await retryUntilDeadline(async () => {
    for await (const step of name.resolve(key, { signal: AbortSignal.any([deadline, AbortSignal.timeout(10_000)]) })) {
      return step
    }
    throw new Error('resolve yielded nothing')
  })
  const resolvedMs = elapsedMs()
  stage = 'unixfs cat master.m3u8'
  const root = rootOf(result.value)
  const master = await catMaster(helia, root)
  return { value: result.value, sequence: result.record.sequence.toString(), attempts, resolved_ms: resolvedMs, master }
}

async function pubsubIpns (helia, stationPeer) {
  const key = peerIdFromString(target).toMultihash()
  const routingKey = multihashToIPNSRoutingKey(key)
  // Kubo's topic: /record/ + unpadded base64url of the routing key (/ipns/<multihash>).
  const topic = `/record/${Buffer.from(routingKey).toString('base64url')}`
  const pubsub = helia.libp2p.services.pubsub
  // The first message from the station on the topic, checked with npm `ipns` on its own.
  const published = new Promise((resolve, reject) => {
    const onMessage = (evt) => {
      const message = evt.detail
      if (message.topic !== topic) return
      if (message.type !== 'signed' || !message.from.equals(stationPeer)) {
        log(`ignoring a message on the topic from ${message.from ?? 'nobody (unsigned)'}`)
        return
      }
      ipnsValidator(routingKey, message.data).then(() => {
        pubsub.removeEventListener('message', onMessage)
        resolve(unmarshalIPNSRecord(message.data))
      }, (err) => log(`invalid record from the station: ${err.message}`))
    }
    pubsub.addEventListener('message', onMessage)
    deadline.addEventListener('abort', () => reject(new Error('no valid record arrived over pubsub')))
  })
  // Awaited below; this only keeps an early rejection from crashing the process unreported.
  published.catch(() => {})

  stage = 'waiting for the station to show up on the topic'
  // Subscriptions are exchanged once gossipsub's streams are open, a moment after the dial.
  while (!pubsub.getSubscribers(topic).some((peer) => peer.equals(stationPeer))) {
    if (deadline.aborted) throw new Error(`the station never subscribed to ${topic}`)
    await sleep(50)
  }

  stage = 'pubsub subscribe'
  const router = pubSubIPNSRouting(helia)
  // The pubsub router's first get() subscribes, then asks the topic's peers (the station)
  // for the current record over /libp2p/fetch; nothing has been pushed on the topic yet.
  let firstGet
  let fetched = null
  try {
    const bytes = await router.get(routingKey, { signal: deadline })
    await ipnsValidator(routingKey, bytes)
    fetched = unmarshalIPNSRecord(bytes)
    firstGet = 'returned a record'
  } catch (err) {
    firstGet = `${err.name}: ${err.message}`
  }
  log(`subscribed to ${topic}; first get: ${firstGet}`)

  stage = 'waiting for the station to publish on the topic'
  const pushed = await published
  const pushedMs = elapsedMs()

  stage = 'resolving from what pubsub delivered'
  // offline: only the local store, which nothing but the pubsub router has written to.
  const name = ipns(helia)
  // The router stores a pushed record a moment after the message event; until then the
  // store holds the record fetched on subscribing, which may be older.
  const { value: result, attempts } = await retryUntilDeadline(async () => {
    for await (const step of name.resolve(key, { offline: true, signal: deadline })) {
      if (step.record.sequence < pushed.sequence) {
        throw new Error(`resolved sequence ${step.record.sequence} is older than the pushed ${pushed.sequence}`)
      }
      return step
    }
    throw new Error('resolve yielded nothing')
  }, 50)
  stage = 'unixfs cat master.m3u8'
  const master = await catMaster(helia, rootOf(result.value))
  return {
    topic,
    first_get: firstGet,
    fetched_value: fetched?.value ?? null,
    fetched_sequence: fetched?.sequence.toString() ?? null,
    pushed_value: pushed.value,
    pushed_sequence: pushed.sequence.toString(),
    pushed_ms: pushedMs,
    value: result.value,
    sequence: result.record.sequence.toString(),
    attempts,
    master
  }
}

async function verifiedFetch (helia, stationPeer) {
  stage = 'waiting for the DHT routing table'
  await waitForDhtPeer(helia, stationPeer)
  const fetch = await createVerifiedFetch(helia)
  const get = async (path) => {
    stage = `verified-fetch ipns://${target}/${path}`
    const response = await fetch(`ipns://${target}/${path}`, { signal: deadline })
    if (response.status !== 200) {
      throw new Error(`HTTP ${response.status} ${response.statusText}: ${(await response.text()).slice(0, 300)}`)
    }
    // x-ipfs-roots: the CIDs from the resolved root down to the file.
    const roots = (response.headers.get('x-ipfs-roots') ?? '').split(',').filter((r) => r !== '')
    return { bytes: Buffer.from(await response.arrayBuffer()), roots }
  }
  // The first request resolves the name (DHT), so it may race the station's first put.
  const { value: masterResponse, attempts } = await retryUntilDeadline(() => get('master.m3u8'))
  const master = masterResponse.bytes.toString('utf8')
  const masterRoot = masterResponse.roots[0]
  if (masterRoot == null) throw new Error('no x-ipfs-roots header on master.m3u8')
  const variant = playlistUris(master)[0]
  if (variant == null) throw new Error(`master.m3u8 lists no variant playlist:\n${master}`)
  const playlist = (await get(variant)).bytes.toString('utf8')
  const segments = playlistUris(playlist)
  // The newest segment: still in the window when the name moves on to the next root.
  const segmentPath = segments.at(-1)
  if (segmentPath == null) throw new Error(`${variant} lists no segment:\n${playlist}`)
  // URIs are relative to the playlist's directory.
  const dir = variant.includes('/') ? variant.slice(0, variant.lastIndexOf('/') + 1) : ''
  const { bytes: segment, roots: segmentRoots } = await get(dir + segmentPath)
  // Segments are single raw blocks: their CID is the raw CIDv1 of their bytes, and the
  // last CID on the path verified-fetch walked.
  const segmentCid = CID.createV1(raw.code, await sha256.digest(segment))
  if (segmentRoots.at(-1) !== segmentCid.toString()) {
    throw new Error(`segment bytes hash to ${segmentCid}, but verified-fetch walked ${segmentRoots.join(',')}`)
  }
  return {
    attempts,
    value: `/ipfs/${masterRoot}`,
    master,
    variant,
    segment_path: dir + segmentPath,
    segment_len: segment.length,
    segment_sha256: sha256Hex(segment),
    segment_cid: segmentCid.toString()
  }
}

const modes = { bitswap, 'dht-ipns': dhtIpns, 'pubsub-ipns': pubsubIpns, 'verified-fetch': verifiedFetch }
if (modes[mode] == null) {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}

let helia
let exitCode = 0
try {
  stage = 'starting Helia'
  helia = await makeNode()
  stage = `dialing ${stationAddr}`
  const station = multiaddr(stationAddr)
  const stationPeer = peerIdFromString(station.getPeerId())
  await helia.libp2p.dial(station, { signal: deadline })
  log('connected')
  const result = await modes[mode](helia, stationPeer)
  print({ ok: true, mode, elapsed_ms: elapsedMs(), ...result })
} catch (err) {
  exitCode = 1
  print({ ok: false, mode, stage, elapsed_ms: elapsedMs(), error: `${err.name ?? 'Error'}: ${err.message ?? err}` })
} finally {
  // Stopping can hang on half-closed streams; never let it outlive the deadline.
  await Promise.race([helia?.stop(), sleep(3000)]).catch(() => {})
  process.exit(exitCode)
}
