"""BSI TR-03110 (Extended Access Control for the German eID card), sans-I/O, in one place.

Why one package: the kiosk (:mod:`cardreader`), the certificate tools (:mod:`certs`) and the embedded
eID-Server (:mod:`eid_gateway.eidserver`) all speak the same card formats, and each used to carry its
own BER-TLV reader, OID table and APDU codec. Here: the BSI object identifiers (:mod:`.oids`),
BER-TLV (:mod:`.tlv`), ISO/IEC 7816-4 APDUs (:mod:`.apdu`), SecurityInfos (:mod:`.security_infos`),
CV certificates and certificate descriptions (:mod:`.cvc`) and the EAC cryptography (:mod:`.crypto`).

It imports nothing of the gateway (``eid_gateway``), the kiosk or the certificate tools; how a gateway
attribute maps to a CHAT right is the gateway's business (:mod:`eid_gateway.eid.chat`).
"""
