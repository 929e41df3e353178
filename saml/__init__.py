"""A hardened SAML 2.0 toolkit (sans-I/O): safe XML, XML-DSig/XML-Enc via xmlsec, messages, bindings,
metadata. Usable by relying services on its own; it imports nothing from the gateway."""
