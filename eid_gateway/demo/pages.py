"""HTML of the demo city service (German and English, no JavaScript), built with escaping throughout."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Final

from eid_gateway.identity import SAML_NAMES, Attribute
from eid_gateway.web.i18n import ATTRIBUTE_LABELS

LANGS: Final = ("de", "en")

TEXTS: Final[dict[str, dict[str, str]]] = {
    "portal": {"de": "Bürgerportal Düren (Demo)", "en": "Citizens' portal Düren (demo)"},
    "title": {"de": "Meldebescheinigung beantragen", "en": "Apply for a certificate of registration"},
    "demo_note": {
        "de": "Dies ist ein Demonstrationsdienst. Es werden keine echten Anträge bearbeitet.",
        "en": "This is a demonstration service. No real applications are processed.",
    },
    "intro": {
        "de": "Für eine Meldebescheinigung müssen wir Sie sicher identifizieren. Melden Sie sich dazu mit "
        "der Online-Ausweisfunktion Ihres Personalausweises an. Übermittelt werden: Vornamen, "
        "Familienname, Geburtsdatum und Anschrift.",
        "en": "To issue a certificate of registration we need to identify you securely. Please sign in "
        "with the online ID function of your German ID card. Passed on: given names, family name, date "
        "of birth and address.",
    },
    "signin": {"de": "Mit Online-Ausweis anmelden", "en": "Sign in with the online ID"},
    "signin_oidc": {
        "de": "Mit Online-Ausweis anmelden (OpenID Connect)",
        "en": "Sign in with the online ID (OpenID Connect)",
    },
    "other_language": {"de": "English", "en": "Deutsch"},
    "ok_heading": {"de": "Anmeldung erfolgreich", "en": "Signed in"},
    "ok_text": {
        "de": "Die Anmeldung wurde geprüft (Signatur, Empfänger, Gültigkeit). Diese Daten hat der "
        "Anmeldedienst übermittelt:",
        "en": "The sign-in was verified (signature, recipient, validity). The gateway passed on these data:",
    },
    "subject": {"de": "Pseudonym bei diesem Dienst", "en": "Pseudonym at this service"},
    "loa": {"de": "Vertrauensniveau", "en": "Level of assurance"},
    "encrypted": {"de": "Verschlüsselt übertragen", "en": "Transferred encrypted"},
    "yes": {"de": "ja", "en": "yes"},
    "no": {"de": "nein", "en": "no"},
    "next_step": {
        "de": "Ihre Meldebescheinigung würde jetzt erstellt (Demo).",
        "en": "Your certificate of registration would now be issued (demo).",
    },
    "again": {"de": "Erneut anmelden", "en": "Sign in again"},
    "error_heading": {"de": "Anmeldung nicht erfolgreich", "en": "Sign-in not successful"},
    "status_denied": {
        "de": "Die Anmeldung wurde abgebrochen. Es wurden keine Daten übermittelt.",
        "en": "The sign-in was cancelled. No data was passed on.",
    },
    "status_authn_failed": {
        "de": "Die Authentifizierung mit dem Ausweis ist fehlgeschlagen (zum Beispiel PIN falsch oder "
        "Online-Ausweisfunktion gesperrt).",
        "en": "Authentication with the ID card failed (for example a wrong PIN or a blocked online ID "
        "function).",
    },
    "status_other": {
        "de": "Der Anmeldedienst hat einen Fehler gemeldet.",
        "en": "The sign-in gateway reported an error.",
    },
    "status_codes": {"de": "Statuscode", "en": "Status code"},
    "rejected": {
        "de": "Die Antwort des Anmeldedienstes wurde bei der Prüfung abgelehnt.",
        "en": "The gateway's answer failed verification and was refused.",
    },
    "reason": {"de": "Grund", "en": "Reason"},
    "unavailable": {
        "de": "Der Anmeldedienst ist zurzeit nicht erreichbar. Bitte versuchen Sie es später noch einmal.",
        "en": "The sign-in gateway cannot be reached at the moment. Please try again later.",
    },
    "missing": {
        "de": "Es wurde keine Anmeldeantwort übermittelt.",
        "en": "No sign-in answer was received.",
    },
}

_SHOWN: Final = (
    Attribute.FAMILY_NAMES, Attribute.BIRTH_NAME, Attribute.GIVEN_NAMES, Attribute.DOCTORAL_DEGREE,
    Attribute.ARTISTIC_NAME, Attribute.DATE_OF_BIRTH, Attribute.PLACE_OF_BIRTH, Attribute.ADDRESS,
    Attribute.NATIONALITY, Attribute.DOCUMENT_TYPE, Attribute.ISSUING_STATE, Attribute.DATE_OF_EXPIRY,
    Attribute.COMMUNITY_ID, Attribute.RESIDENCE_PERMIT, Attribute.AGE_VERIFICATION,
    Attribute.PLACE_VERIFICATION,
)  # the pseudonym attribute equals the Subject's NameID, shown once as "subject"


def t(key: str, lang: str) -> str:
    return TEXTS[key][lang]


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _place(text: str) -> str:
    """A place in the gateway's documented JSON form, as one readable line."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    parts = [str(data[k]) for k in ("street",) if k in data]
    town = " ".join(str(data[k]) for k in ("zip_code", "city") if k in data)
    if town:
        parts.append(town)
    parts += [str(data[k]) for k in ("state", "country", "freetext", "no_place_info") if k in data]
    return ", ".join(parts) or text


def _date(text: str, lang: str) -> str:
    pieces = text.split("-")
    if lang == "de" and all(p.isdigit() for p in pieces):
        return ".".join(reversed(pieces))
    return text


def display_value(attribute: Attribute, value: str, lang: str) -> str:
    if attribute in (Attribute.ADDRESS, Attribute.PLACE_OF_BIRTH):
        return _place(value)
    if attribute in (Attribute.DATE_OF_BIRTH, Attribute.DATE_OF_EXPIRY):
        return _date(value, lang)
    if attribute in (Attribute.AGE_VERIFICATION, Attribute.PLACE_VERIFICATION):
        return t("yes", lang) if value == "true" else t("no", lang)
    return value


def page(lang: str, prefix: str, switch_url: str, body: str) -> bytes:
    other = "en" if lang == "de" else "de"
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_e(t("title", lang))} – {_e(t("portal", lang))}</title>
<link rel="stylesheet" href="{_e(prefix)}/static/demo.css">
</head>
<body>
<header><p class="portal">{_e(t("portal", lang))}</p>
<nav><a href="{_e(switch_url)}" lang="{other}" hreflang="{other}">{_e(t("other_language", lang))}</a></nav>
</header>
<main id="main">
<p class="demo-note" role="note">{_e(t("demo_note", lang))}</p>
{body}
</main>
</body>
</html>
""".encode("utf-8")


def start_body(lang: str, login_url: str, oidc_login_url: str | None = None) -> str:
    """The start page: the SAML sign-in button and, where the demo is an OIDC client too, a second."""
    body = (
        f"<h1>{_e(t('title', lang))}</h1>\n<p>{_e(t('intro', lang))}</p>\n"
        f'<p><a class="button" id="signin" href="{_e(login_url)}">{_e(t("signin", lang))}</a></p>'
    )
    if oidc_login_url is not None:
        body += (
            f'\n<p><a class="button" id="signin-oidc" href="{_e(oidc_login_url)}">'
            f'{_e(t("signin_oidc", lang))}</a></p>'
        )
    return body


def result_body(
    lang: str,
    *,
    attributes: Mapping[str, Sequence[str]],
    subject: str,
    loa: str | None,
    encrypted: bool,
    again_url: str,
) -> str:
    rows: list[tuple[str, str]] = []
    for attribute in _SHOWN:
        values = attributes.get(SAML_NAMES[attribute])
        if values:
            shown = "; ".join(display_value(attribute, v, lang) for v in values)
            rows.append((ATTRIBUTE_LABELS[attribute][lang], shown))
    rows.append((t("subject", lang), subject))
    rows.append((t("loa", lang), loa or "-"))
    rows.append((t("encrypted", lang), t("yes" if encrypted else "no", lang)))
    table = "\n".join(
        f'<tr><th scope="row">{_e(label)}</th><td>{_e(value)}</td></tr>' for label, value in rows
    )
    return (
        f'<h1>{_e(t("ok_heading", lang))}</h1>\n<p>{_e(t("ok_text", lang))}</p>\n'
        f'<table class="identity" id="identity">\n{table}\n</table>\n'
        f'<p>{_e(t("next_step", lang))}</p>\n<p><a href="{_e(again_url)}">{_e(t("again", lang))}</a></p>'
    )


def error_body(lang: str, message_key: str, details: Sequence[tuple[str, str]], again_url: str) -> str:
    items = "\n".join(f"<li>{_e(t(k, lang))}: <code>{_e(v)}</code></li>" for k, v in details)
    return (
        f'<h1>{_e(t("error_heading", lang))}</h1>\n<p class="error" id="error">{_e(t(message_key, lang))}</p>\n'
        + (f"<ul>\n{items}\n</ul>\n" if items else "")
        + f'<p><a href="{_e(again_url)}">{_e(t("again", lang))}</a></p>'
    )


STYLESHEET: Final = """\
body { font-family: system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f6f7f9; }
header { display: flex; justify-content: space-between; align-items: center; padding: .8rem 1.5rem;
         background: #004b87; color: #fff; }
header a { color: #fff; }
.portal { font-weight: 600; margin: 0; }
main { max-width: 44rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff; border-radius: 6px; }
.demo-note { background: #fff4ce; padding: .5rem .8rem; border-left: 4px solid #c9a400; }
.button { display: inline-block; padding: .7rem 1.2rem; background: #004b87; color: #fff;
          text-decoration: none; border-radius: 4px; font-weight: 600; }
.button:focus, .button:hover { background: #00335c; outline: 3px solid #ffbf47; }
table.identity { border-collapse: collapse; width: 100%; }
table.identity th, table.identity td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }
.error { color: #a00; font-weight: 600; }
code { word-break: break-all; }
"""
