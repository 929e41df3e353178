"""Keys and certificates of the gateway: loading, the development PKI, CV certificates."""
