// A loopback-only Helia 7 node that can talk to an ipfm station.
//
// Deliberately NOT createHelia(): that is withBitswap(withLibp2p(withHTTP(createHeliaLight()))),
// where withHTTP adds a delegated HTTP router (https://delegated-ipfs.dev), public trustless
// gateways as fallback block sources, and withLibp2p's libp2pDefaults() brings mdns, the public
// bootstrap list, autoNAT, autoTLS, UPnP, relay, webrtc… Composing the "light" pieces gives a
// node with only what is listed here, and the connection gater refuses any non-loopback dial.
import { createHeliaLight } from 'helia'
import { withLibp2pLight } from '@helia/libp2p'
import { withBitswap } from '@helia/bitswap'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { gossipsub } from '@libp2p/gossipsub' // not @chainsafe/libp2p-gossipsub: it never sees subscribers under libp2p 3
import { fetch as libp2pFetch } from '@libp2p/fetch' // @helia/ipns's pubsub router asks topic peers over it
import { ipnsValidator } from 'ipns/validator'
import { ipnsSelector } from 'ipns/selector'

// Kubo's LAN DHT protocol. ipfm (like Kubo's dual DHT) keeps loopback and private peers only
// in its LAN table, and only adds peers whose identify lists this protocol: a Helia speaking
// the WAN id `/ipfs/kad/1.0.0` on loopback is never routed to by ipfm.
export const LAN_DHT_PROTOCOL = '/ipfs/lan/kad/1.0.0'

const LOOPBACK = /^\/ip4\/127\.\d+\.\d+\.\d+\//

export async function makeNode ({ dhtProtocol = LAN_DHT_PROTOCOL } = {}) {
  const helia = withBitswap(withLibp2pLight(createHeliaLight({
    // no routers or block brokers: withLibp2pLight adds only libp2pRouting(libp2p)
  }), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [], // no bootstrap list, no mDNS: the station is dialled explicitly
    connectionGater: {
      denyDialMultiaddr: (ma) => !LOOPBACK.test(ma.toString())
    },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: dhtProtocol,
        clientMode: false, // a server even without public addresses, like Kubo's LAN DHT
        peerInfoMapper: removePublicAddressesMapper, // keeps 127.x addresses in DHT answers
        allowQueryWithZeroPeers: true,
        // kad-dht validates values it gets; without these an /ipns/ record is refused
        validators: { ipns: ipnsValidator },
        selectors: { ipns: ipnsSelector }
      }),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }),
      fetch: libp2pFetch()
    }
  }))
  await helia.start()
  return helia
}
