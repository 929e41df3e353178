"""Test facilities: a virtual German ID card for vpcd and a pcscd launcher. Never for production use."""
