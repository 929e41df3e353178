"""Keys and certificates of the gateway: loading, PKCS#11, the development PKI and a development CV
certificate chain (CV certificates themselves are :mod:`tr03110.cvc`)."""
