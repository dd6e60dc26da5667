// Validate an IPNS record with npm `ipns` (the reference JS implementation), as a DHT node would.
//
// Usage: node tests/interop/ipns_validate.mjs RECORD_FILE NAME
//   RECORD_FILE: the marshalled IpnsEntry protobuf bytes
//   NAME:        the IPNS name the record is published under: `k51…` (CIDv1 libp2p-key, base36)
//                or a peer id (`12D3KooW…`)
// Accepted (exit 0), stdout one line of JSON:
//   {"valid":true,"value":"/ipfs/…","sequence":N,"validity":"<RFC 3339 EOL>","ttl":NANOSECONDS}
// Rejected (exit 1), stdout {"valid":false,"error":"<ErrorName>: <message>"}, message on stderr.
// Exit 2 on usage errors (missing file, unparseable name).
//
// `ipnsValidator(routingKey, bytes)` checks the size limit, that the embedded (or identity-hashed)
// public key belongs to NAME, the V2 signature over the DAG-CBOR data, that the protobuf V1
// fields match the CBOR data, and the EOL; `unmarshalIPNSRecord` then gives value and sequence.
import { readFile } from 'node:fs/promises'
import { multihashToIPNSRoutingKey, unmarshalIPNSRecord } from 'ipns'
import { ipnsValidator } from 'ipns/validator'
import { peerIdFromString } from '@libp2p/peer-id'

async function main ([recordFile, name]) {
  if (recordFile === undefined || name === undefined) {
    usage('usage: ipns_validate.mjs RECORD_FILE NAME')
  }
  let bytes, routingKey
  try {
    bytes = new Uint8Array(await readFile(recordFile))
  } catch (err) {
    usage(`${recordFile}: ${err.message}`)
  }
  try {
    routingKey = multihashToIPNSRoutingKey(peerIdFromString(name).toMultihash())
  } catch (err) {
    usage(`${name}: not an IPNS name: ${err.message}`)
  }
  try {
    await ipnsValidator(routingKey, bytes)
    const record = unmarshalIPNSRecord(bytes)
    // Built by hand: sequence and ttl are u64 (BigInt), which JSON.stringify refuses.
    const ttl = record.ttl === undefined ? 'null' : record.ttl.toString()
    process.stdout.write(`{"valid":true,"value":${JSON.stringify(record.value)},` +
      `"sequence":${record.sequence.toString()},"validity":${JSON.stringify(record.validity)},` +
      `"ttl":${ttl}}\n`)
  } catch (err) {
    const error = `${err.name}: ${err.message}`
    process.stdout.write(JSON.stringify({ valid: false, error }) + '\n')
    process.stderr.write(`ipns_validate.mjs: record rejected: ${error}\n`)
    process.exit(1)
  }
}

function usage (message) {
  process.stderr.write(`ipns_validate.mjs: ${message}\n`)
  process.exit(2)
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`ipns_validate.mjs: ${err.stack}\n`)
  process.exit(2)
})
