"""Application services the HTTP views call: wallets and transfers, banking, trust."""
