"""Listings in the daemon: delivery keys, sealed (encrypted) delivery, and the RPC of `neuro market`."""
