from cardreader.testing.fixtures import pcscd, pcscd_session, vcard  # noqa: F401  (pytest fixtures)
