"""wallet: keys, the encrypted keystore, and offline transaction signing."""
