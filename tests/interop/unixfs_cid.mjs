// Print the root CIDs that npm `ipfs-unixfs-importer` gives files and directories when run with
// Kubo's `ipfs add` parameters: 256 KiB fixed-size chunks, balanced DAG with 174 links per node,
// a single-chunk file collapsed into its leaf.
//
// Usage: node tests/interop/unixfs_cid.mjs [--v0] PATH...
//   default: CIDv1 with raw leaves  (= `ipfs add --cid-version=1 [-r]`)
//   --v0:    CIDv0 with dag-pb leaves (= plain `ipfs add [-r]` of Kubo 0.22)
// Output (stdout, one line): JSON object {PATH: CID} with PATH exactly as given.
// A directory is imported recursively with every entry (dotfiles included; symlinks are an error)
// and its CID is the one `ipfs add -r DIR` reports for DIR itself.
// Exit 0 on success, 1 with a message on stderr on any failure.
import { createReadStream } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { MemoryBlockstore } from 'blockstore-core/memory'

const KUBO_CHUNK_SIZE = 262144
const KUBO_MAX_LINKS = 174

function importerOptions (v0) {
  return {
    chunker: fixedSize({ chunkSize: KUBO_CHUNK_SIZE }),
    layout: balanced({ maxChildrenPerNode: KUBO_MAX_LINKS }),
    reduceSingleLeafToSelf: true,
    cidVersion: v0 ? 0 : 1,
    rawLeaves: !v0,
    // Kubo writes Links before Data in every dag-pb node.
    fieldOrder: 'links-first',
    wrapWithDirectory: false
  }
}

// The importer splits paths on '/' (a backslash escapes it), so names with either
// character cannot be passed through faithfully: refuse them rather than hash something else.
function checkName (name, where) {
  if (name.includes('/') || name.includes('\\')) {
    throw new Error(`${where}: name ${JSON.stringify(name)} contains '/' or '\\'`)
  }
}

// Every entry under `dir`, directories included (so empty ones are kept), with paths below `prefix`.
async function * walk (dir, prefix) {
  yield { path: prefix }
  const names = await readdir(dir)
  for (const name of names) {
    const full = join(dir, name)
    checkName(name, full)
    const info = await lstat(full)
    const path = `${prefix}/${name}`
    if (info.isDirectory()) {
      yield * walk(full, path)
    } else if (info.isFile()) {
      yield { path, content: createReadStream(full) }
    } else {
      throw new Error(`${full}: not a regular file or directory`)
    }
  }
}

async function cidOf (path, v0) {
  const blockstore = new MemoryBlockstore()
  const info = await lstat(path)
  if (info.isFile()) {
    let last
    for await (const entry of importer([{ content: createReadStream(path) }], blockstore, importerOptions(v0))) {
      last = entry
    }
    return last.cid.toString()
  }
  if (!info.isDirectory()) {
    throw new Error(`${path}: not a regular file or directory`)
  }
  // A directory's own name is not part of its CID: import it under a fixed root name and pick
  // the entry for that root (the importer also yields every file and subdirectory).
  const ROOT = 'root'
  let root
  for await (const entry of importer(walk(path, ROOT), blockstore, importerOptions(v0))) {
    if (entry.path === ROOT) {
      root = entry
    }
  }
  if (root === undefined) {
    throw new Error(`${path}: importer yielded no root directory`)
  }
  return root.cid.toString()
}

async function main (argv) {
  const v0 = argv.includes('--v0')
  const paths = argv.filter((a) => a !== '--v0')
  if (paths.length === 0) {
    throw new Error('usage: unixfs_cid.mjs [--v0] PATH...')
  }
  const out = {}
  for (const path of paths) {
    out[path] = await cidOf(path, v0)
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`unixfs_cid.mjs: ${err.message}\n`)
  process.exit(1)
})
