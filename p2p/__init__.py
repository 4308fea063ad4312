"""Peer-to-peer layer of neurod: libp2p host, gossip topics, peer scoring and the sync protocol.

Only this package imports libp2p. The rest of the code sees peer ids and multiaddrs as `str`,
payloads as `bytes`, and talks to the chain through the Protocols in `p2p.backend`.
Importing `p2p` itself stays cheap: libp2p loads only with `p2p.node` / `p2p.host`.
"""
