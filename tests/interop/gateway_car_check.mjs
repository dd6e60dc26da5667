// Read a CAR file with @ipld/car (the reference JavaScript CAR implementation) and list
// what it holds, checking every block against its CID with the multiformats hashers.
//
// Usage: node tests/interop/gateway_car_check.mjs CAR_FILE
// Exit 0, stdout one line of JSON: {"version":1,"roots":["bafy…"],"blocks":["bafy…",…]}
// (block CIDs in CAR order, as CIDv1 strings). Exit 1 if the CAR is malformed or a block
// does not hash to its CID; exit 2 on usage errors.
import { readFile } from 'node:fs/promises'
import { CarBlockIterator } from '@ipld/car/iterator'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import { equals } from 'multiformats/bytes'

const hashers = { [sha256.code]: sha256, [identity.code]: identity }

async function main ([carFile]) {
  if (carFile === undefined) {
    console.error('usage: gateway_car_check.mjs CAR_FILE')
    process.exit(2)
  }
  let bytes
  try {
    bytes = new Uint8Array(await readFile(carFile))
  } catch (err) {
    console.error(`${carFile}: ${err.message}`)
    process.exit(2)
  }
  const reader = await CarBlockIterator.fromBytes(bytes)
  const roots = (await reader.getRoots()).map((cid) => cid.toV1().toString())
  const blocks = []
  for await (const { cid, bytes: data } of reader) {
    const hasher = hashers[cid.multihash.code]
    if (hasher === undefined) {
      throw new Error(`block ${cid}: unsupported multihash ${cid.multihash.code}`)
    }
    const digest = await hasher.digest(data)
    if (!equals(digest.bytes, cid.multihash.bytes)) {
      throw new Error(`block ${cid} does not hash to its CID`)
    }
    blocks.push(cid.toV1().toString())
  }
  console.log(JSON.stringify({ version: reader.version, roots, blocks }))
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err.stack ?? String(err))
  process.exit(1)
})
