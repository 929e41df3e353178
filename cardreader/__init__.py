"""Card readers on Bürgerbüro kiosks: PC/SC status, German ID card recognition, the kiosk agent.

Pure parts (atr, features, model, identify, outbox) do no I/O; EF.CardAccess, its SecurityInfos and the
APDUs that read it are :mod:`tr03110` (shared with the eID-Server); pcsc.py is the
only module that talks to PC/SC, monitor.py watches it, agent.py reports to the gateway, cli.py is
`eid-gateway readers`. cardreader.testing holds the test facilities (virtual card, pcscd launcher).
"""
