// Create and sign an IPNS record with npm `ipns` (the reference JS implementation) for a fresh
// key, so ipfm's parser and validator can be checked against records it did not make.
//
// Usage: node tests/interop/ipns_create.mjs OUT_RECORD_FILE [VALUE [SEQUENCE [LIFETIME_MS [KEY_TYPE]]]]
//   VALUE defaults to /ipfs/<CIDv1 of "hello from npm ipns">, SEQUENCE to 7, LIFETIME_MS to 1 hour,
//   KEY_TYPE to Ed25519 (or RSA: a 2048-bit key, whose record carries it in pubKey as Kubo's do;
//   or secp256k1, whose name inlines the key).
// Writes the marshalled record (V1+V2 compatible, npm's default) to OUT_RECORD_FILE and prints
// one line of JSON: {"name":"k51…","peer_id":"12D3KooW…","value":"/ipfs/…","sequence":N,
//                    "validity":"<RFC 3339 EOL>","ttl":NANOSECONDS}
import { writeFile } from 'node:fs/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createIPNSRecord, marshalIPNSRecord } from 'ipns'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

async function defaultValue () {
  const bytes = new TextEncoder().encode('hello from npm ipns')
  return `/ipfs/${CID.createV1(raw.code, await sha256.digest(bytes)).toString()}`
}

async function main ([out, value, sequence = '7', lifetimeMs = '3600000', keyType = 'Ed25519']) {
  if (out === undefined) {
    throw new Error('usage: ipns_create.mjs OUT_RECORD_FILE [VALUE [SEQUENCE [LIFETIME_MS [KEY_TYPE]]]]')
  }
  value = value ?? await defaultValue()
  // Not ECDSA: @libp2p/peer-id has no peer id (so no IPNS name) for ECDSA keys.
  if (!['Ed25519', 'RSA', 'secp256k1'].includes(keyType)) {
    throw new Error(`KEY_TYPE must be Ed25519, RSA or secp256k1, not ${keyType}`)
  }
  const key = keyType === 'RSA' ? await generateKeyPair('RSA', 2048) : await generateKeyPair(keyType)
  const peerId = peerIdFromPrivateKey(key)
  const record = await createIPNSRecord(key, value, BigInt(sequence), Number(lifetimeMs))
  await writeFile(out, marshalIPNSRecord(record))
  // Built by hand: sequence and ttl are u64 (BigInt), which JSON.stringify refuses.
  process.stdout.write(`{"name":${JSON.stringify(peerId.toCID().toString(base36))},` +
    `"peer_id":${JSON.stringify(peerId.toString())},"value":${JSON.stringify(record.value)},` +
    `"sequence":${record.sequence.toString()},"validity":${JSON.stringify(record.validity)},` +
    `"ttl":${record.ttl.toString()}}\n`)
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`ipns_create.mjs: ${err.message}\n`)
  process.exit(1)
})
