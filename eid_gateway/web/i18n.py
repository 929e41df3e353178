"""Citizen-facing texts in German (default) and English, and the choice between them.

Every text exists in both languages (a test checks it); templates look texts up with ``t(key)``.
The language is chosen once and then kept: ``?lang=`` (the citizen's language switch, or a SAML service's
``lang`` parameter on the SSO URL), then the service's wish for this request (OIDC ``ui_locales``, passed
on by :func:`hint_language`), then the cookie an earlier choice left, then ``Accept-Language``, then
German. A choice is remembered in the cookie (:func:`remember_language`), so that the card page and
every error page follow it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Final

from aiohttp import web

from eid_gateway.core.port import FailureKind
from eid_gateway.identity import Attribute

LANGUAGES: Final = ("de", "en")
DEFAULT_LANGUAGE: Final = "de"

TEXTS: Final[dict[str, dict[str, str]]] = {
    "site_name": {"de": "Anmeldung mit dem Personalausweis", "en": "Sign-in with the German ID card"},
    "skip_link": {"de": "Zum Inhalt springen", "en": "Skip to content"},
    "other_language": {"de": "English", "en": "Deutsch"},
    "other_language_label": {"de": "Switch to English", "en": "Auf Deutsch wechseln"},
    "signin_title": {"de": "Anmelden bei: {service}", "en": "Sign in to: {service}"},
    "signin_intro": {
        "de": "Für „{service}“ weisen Sie sich bitte mit Ihrem Personalausweis (Online-Ausweisfunktion) aus.",
        "en": "For “{service}”, please identify yourself with your German ID card (online ID function).",
    },
    "signin_data_heading": {
        "de": "Diese Daten werden aus Ihrem Ausweis gelesen und übermittelt:",
        "en": "These data will be read from your ID card and passed on:",
    },
    "signin_required": {"de": "erforderlich", "en": "required"},
    "signin_optional": {"de": "freiwillig", "en": "optional"},
    "signin_minimum_age": {
        "de": "Nur die Bestätigung, ob Sie mindestens {age} Jahre alt sind (nicht Ihr Geburtsdatum)",
        "en": "Only whether you are at least {age} years old (not your date of birth)",
    },
    "signin_what_you_need": {
        "de": "Sie brauchen: Ihren Personalausweis, Ihre sechsstellige PIN und die AusweisApp "
        "(auf diesem Computer oder auf Ihrem Smartphone).",
        "en": "You need: your ID card, your six-digit PIN and the AusweisApp (on this computer or on your smartphone).",
    },
    "signin_button": {"de": "Mit der AusweisApp anmelden", "en": "Sign in with the AusweisApp"},
    "signin_button_mobile": {
        "de": "AusweisApp auf dem Smartphone öffnen",
        "en": "Open the AusweisApp on your smartphone",
    },
    "signin_get_app": {
        "de": "Noch keine AusweisApp? Sie ist kostenlos:",
        "en": "No AusweisApp yet? It is free:",
    },
    "signin_get_app_link": {
        "de": "AusweisApp herunterladen (offizielle Seite)",
        "en": "Download the AusweisApp (official page)",
    },
    "signin_app_missing_heading": {
        "de": "Die AusweisApp antwortet auf diesem Computer nicht",
        "en": "The AusweisApp does not answer on this computer",
    },
    "signin_app_missing_text": {
        "de": "Bitte starten Sie die AusweisApp und klicken Sie dann noch einmal auf „Mit der AusweisApp "
        "anmelden“. Wenn sie noch nicht installiert ist, laden Sie sie kostenlos von der offiziellen Seite "
        "herunter. Sie können stattdessen auch die AusweisApp auf Ihrem Smartphone verwenden.",
        "en": "Please start the AusweisApp, then click “Sign in with the AusweisApp” again. If it is not "
        "installed yet, download it free of charge from the official page. You can also use the "
        "AusweisApp on your smartphone instead.",
    },
    "signin_app_missing_anyway": {
        "de": "Trotzdem mit der AusweisApp auf diesem Computer fortfahren",
        "en": "Continue with the AusweisApp on this computer anyway",
    },
    "signin_progress": {
        "de": "Nach dem Klick öffnet sich die AusweisApp. Folgen Sie den Schritten dort; danach geht es "
        "in diesem Browserfenster automatisch weiter. Bitte schließen Sie dieses Fenster nicht.",
        "en": "After clicking, the AusweisApp opens. Follow its steps; afterwards this browser window "
        "continues automatically. Please do not close this window.",
    },
    "signin_expires": {
        "de": "Diese Anmeldung ist {minutes} Minuten gültig.",
        "en": "This sign-in is valid for {minutes} minutes.",
    },
    "signin_cancel": {"de": "Abbrechen und zurück zum Dienst", "en": "Cancel and return to the service"},
    "simulator_heading": {"de": "Testumgebung", "en": "Test environment"},
    "simulator_notice": {
        "de": "Dieses Gateway verwendet einen simulierten eID-Server. Es werden keine echten Ausweisdaten gelesen.",
        "en": "This gateway uses a simulated eID-Server. No real ID card data is read.",
    },
    "simulator_link": {
        "de": "Ohne Ausweis weiter: simulierte AusweisApp öffnen (nur Test)",
        "en": "Continue without an ID card: open the simulated AusweisApp (test only)",
    },
    "error_heading": {"de": "Die Anmeldung ist nicht gelungen", "en": "The sign-in did not succeed"},
    "error_back": {"de": "Zurück zum Dienst", "en": "Return to the service"},
    "error_id": {"de": "Fehlerkennung: {id}", "en": "Error reference: {id}"},
    "error_retry_hint": {
        "de": "Sie können die Anmeldung beim Dienst neu beginnen.",
        "en": "You can start the sign-in again at the service.",
    },
    "not_found_title": {"de": "Anmeldung nicht gefunden", "en": "Sign-in not found"},
    "not_found_text": {
        "de": "Diese Anmeldung ist unbekannt oder abgelaufen. Bitte beginnen Sie die Anmeldung beim Dienst erneut.",
        "en": "This sign-in is unknown or has expired. Please start the sign-in at the service again.",
    },
    "used_title": {"de": "Anmeldung bereits abgeschlossen", "en": "Sign-in already completed"},
    "used_text": {
        "de": "Dieser Anmeldevorgang wurde bereits verwendet und kann nicht noch einmal genutzt werden. "
        "Bitte beginnen Sie die Anmeldung beim Dienst erneut.",
        "en": "This sign-in has already been used and cannot be used again. Please start the sign-in "
        "at the service again.",
    },
    "wrong_browser_title": {
        "de": "Bitte im ursprünglichen Browser fortfahren",
        "en": "Please continue in the original browser",
    },
    "wrong_browser_text": {
        "de": "Diese Adresse gehört zu einer Anmeldung, die in einem anderen Browser begonnen wurde. "
        "Bitte setzen Sie die Anmeldung dort fort.",
        "en": "This address belongs to a sign-in started in another browser. Please continue there.",
    },
    "relay_title": {"de": "Anmeldung zu Ihrem Schutz beendet", "en": "Sign-in ended for your protection"},
    "relay_text": {
        "de": "Diese Anmeldung wurde nicht in diesem Browser begonnen. Damit niemand anderes Ihre Daten "
        "erhält, wurde sie beendet; es wurden keine Daten übermittelt. Wenn Sie die Anmeldung nicht "
        "selbst auf der Seite eines Dienstes begonnen haben, hat womöglich jemand versucht, Ihren Ausweis "
        "für sich zu nutzen: Geben Sie Ihre PIN nur ein, wenn Sie die Anmeldung selbst begonnen haben.",
        "en": "This sign-in was not started in this browser. So that nobody else receives your data, it "
        "was ended; no data was transmitted. If you did not start the sign-in yourself on a service's "
        "page, someone may have tried to use your ID card for themselves: only enter your PIN for a "
        "sign-in you started yourself.",
    },
    "comm_error_title": {"de": "Verbindung zur AusweisApp unterbrochen", "en": "Connection to the AusweisApp failed"},
    "comm_error_text": {
        "de": "Die AusweisApp konnte die Verbindung zum Ausweis-Server nicht herstellen oder hat sie "
        "abgebrochen. Es wurden keine Daten übermittelt.",
        "en": "The AusweisApp could not connect to the eID server, or the connection broke. No data was transmitted.",
    },
    "internal_title": {"de": "Ein interner Fehler ist aufgetreten", "en": "An internal error occurred"},
    "internal_text": {
        "de": "Bitte versuchen Sie es später noch einmal. Wenn der Fehler bleibt, nennen Sie dem Dienst die "
        "Fehlerkennung.",
        "en": "Please try again later. If the error persists, give the service the error reference.",
    },
    "http_error_title": {"de": "Anfrage nicht möglich", "en": "Request not possible"},
    "http_error_text": {
        "de": "Diese Anfrage kann nicht bearbeitet werden (HTTP {status}).",
        "en": "This request cannot be processed (HTTP {status}).",
    },
    "http_400_title": {"de": "Ungültige Anfrage", "en": "Invalid request"},
    "http_400_text": {
        "de": "Die Anfrage konnte nicht gelesen werden (HTTP {status}).",
        "en": "The request could not be read (HTTP {status}).",
    },
    "http_404_title": {"de": "Seite nicht gefunden", "en": "Page not found"},
    "http_404_text": {
        "de": "Unter dieser Adresse gibt es keine Seite (HTTP {status}).",
        "en": "There is no page at this address (HTTP {status}).",
    },
    "http_405_title": {"de": "Aufruf nicht möglich", "en": "Not possible here"},
    "http_405_text": {
        "de": "Diese Adresse kann so nicht aufgerufen werden (HTTP {status}).",
        "en": "This address cannot be used this way (HTTP {status}).",
    },
    "http_413_title": {"de": "Anfrage zu groß", "en": "Request too large"},
    "http_413_text": {
        "de": "Die gesendeten Daten sind zu umfangreich und wurden nicht angenommen (HTTP {status}).",
        "en": "The data sent is too large and was not accepted (HTTP {status}).",
    },
    "http_431_title": {"de": "Anfrage zu lang", "en": "Request too long"},
    "http_431_text": {
        "de": "Die Adresse oder die mitgesendeten Angaben sind zu lang (HTTP {status}).",
        "en": "The address or the information sent with it is too long (HTTP {status}).",
    },
    "csrf_title": {"de": "Sitzung ungültig", "en": "Session invalid"},
    "csrf_text": {
        "de": "Das Formular war veraltet oder stammt nicht von dieser Seite. Bitte beginnen Sie die "
        "Anmeldung beim Dienst erneut.",
        "en": "The form was outdated or did not come from this page. Please start the sign-in at the service again.",
    },
    "rate_limited_title": {"de": "Zu viele Anfragen", "en": "Too many requests"},
    "rate_limited_text": {
        "de": "Von Ihrem Anschluss kamen in kurzer Zeit zu viele Anmeldeversuche. Bitte warten Sie etwa "
        "{minutes} Minute(n) und beginnen Sie die Anmeldung dann beim Dienst erneut.",
        "en": "Too many sign-in attempts came from your connection in a short time. Please wait about "
        "{minutes} minute(s), then start the sign-in at the service again.",
    },
    "unavailable_title": {"de": "Vorübergehend nicht verfügbar", "en": "Temporarily unavailable"},
    "unavailable_text": {
        "de": "Der Anmeldedienst ist gerade vorübergehend nicht erreichbar. Es wurden keine Daten "
        "übermittelt. Bitte versuchen Sie es in wenigen Minuten noch einmal.",
        "en": "The sign-in service is temporarily unavailable. No data was transmitted. Please try again "
        "in a few minutes.",
    },
    "home_title": {"de": "Anmeldedienst mit dem Personalausweis", "en": "Sign-in service for the German ID card"},
    "home_text": {
        "de": "Über diesen Dienst melden Sie sich mit Ihrem Personalausweis (Online-Ausweisfunktion) bei "
        "Online-Diensten der Verwaltung an. Hier selbst gibt es nichts zu tun.",
        "en": "Through this sign-in service you identify yourself with your German ID card (online ID "
        "function) to online services of the administration. There is nothing to do on this page itself.",
    },
    "home_how": {
        "de": "Beginnen Sie die Anmeldung auf der Seite des Dienstes, den Sie nutzen möchten; er leitet Sie "
        "hierher weiter.",
        "en": "Start the sign-in on the page of the service you want to use; it sends you here.",
    },
    "home_demo": {"de": "Anmeldung am Demo-Dienst ausprobieren", "en": "Try a sign-in with the demo service"},
    "post_title": {"de": "Weiter zum Dienst", "en": "On to the service"},
    "post_text": {
        "de": "Sie werden jetzt zum Dienst weitergeleitet. Falls nichts geschieht, bitte auf „Weiter“ klicken.",
        "en": "You are now being taken to the service. If nothing happens, press “Continue”.",
    },
    "post_button": {"de": "Weiter", "en": "Continue"},
    "footer": {
        "de": "Anmeldedienst nach BSI TR-03130 / TR-03124. Ihre Ausweisdaten werden nur an den genannten "
        "Dienst übermittelt.",
        "en": "Sign-in service following BSI TR-03130 / TR-03124. Your ID card data is passed only to the "
        "service named.",
    },
    # [branding] (eid_gateway/web/branding.py): the operator's legal pages in the footer
    "language_nav_label": {"de": "Sprache", "en": "Language"},
    "footer_nav_label": {"de": "Rechtliches und Hilfe", "en": "Legal information and help"},
    "link_impressum": {"de": "Impressum", "en": "Legal notice"},
    "link_privacy": {"de": "Datenschutzerklärung", "en": "Privacy policy"},
    "link_accessibility": {"de": "Erklärung zur Barrierefreiheit", "en": "Accessibility statement"},
    "link_help": {"de": "Hilfe", "en": "Help"},
    "footer_operator": {"de": "Betrieben von: {operator}", "en": "Operated by: {operator}"},
    # the simulator's stand-in for AusweisApp (TEST FACILITY, eid_gateway/simulator/server.py)
    "sim_title": {"de": "Simulierte AusweisApp", "en": "Simulated AusweisApp"},
    "sim_notice": {
        "de": "Testumgebung: kein echter Ausweis, keine echten Daten.",
        "en": "Test environment: no real ID card, no real data.",
    },
    "sim_identity": {"de": "Testidentität", "en": "Test identity"},
    "sim_pin": {"de": "PIN", "en": "PIN"},
    "sim_pin_hint": {
        "de": "Sechs Ziffern. Die Test-PIN ist 123456 (die Karte „falsche PIN“ erwartet 000000).",
        "en": "Six digits. The test PIN is 123456 (the “wrong PIN” card expects 000000).",
    },
    "sim_confirm": {"de": "Bestätigen", "en": "Confirm"},
    "sim_cancel": {"de": "Abbrechen", "en": "Cancel"},
    "sim_invalid_title": {"de": "Ungültige Anfrage", "en": "Invalid request"},
    "sim_invalid_text": {
        "de": "Die Adresse des TC Tokens (tcTokenURL) fehlt oder ist nicht erlaubt.",
        "en": "The TC Token address (tcTokenURL) is missing or not allowed.",
    },
    "sim_form_text": {"de": "Das Formular ist fehlerhaft.", "en": "The form is malformed."},
    "sim_expired_title": {"de": "Formular abgelaufen", "en": "Form expired"},
    "sim_expired_text": {
        "de": "Das Formular ist abgelaufen oder stammt nicht von dieser Seite. Bitte öffnen Sie die simulierte "
        "AusweisApp erneut von der Anmeldeseite aus.",
        "en": "The form has expired or did not come from this page. Please open the simulated AusweisApp again "
        "from the sign-in page.",
    },
    "sim_error_title": {"de": "Fehler in der simulierten AusweisApp", "en": "Error in the simulated AusweisApp"},
    "sim_error_text": {
        "de": "Der TC Token konnte nicht verarbeitet werden.",
        "en": "The TC Token could not be processed.",
    },
}

FAILURE_TEXTS: Final[dict[FailureKind, dict[str, tuple[str, str]]]] = {
    FailureKind.CANCELLED: {
        "de": (
            "Anmeldung abgebrochen",
            "Die Anmeldung wurde in der AusweisApp abgebrochen. Es wurden keine Daten übermittelt.",
        ),
        "en": ("Sign-in cancelled", "The sign-in was cancelled in the AusweisApp. No data was transmitted."),
    },
    FailureKind.WRONG_PIN: {
        "de": (
            "PIN falsch",
            "Die eingegebene PIN war nicht richtig. Nach dem zweiten Fehlversuch "
            "verlangt die AusweisApp zusätzlich die Zugangsnummer (CAN), nach dem dritten die PUK.",
        ),
        "en": (
            "Wrong PIN",
            "The PIN entered was not correct. After the second wrong attempt the "
            "AusweisApp also asks for the card access number (CAN), after the third for the PUK.",
        ),
    },
    FailureKind.CARD_BLOCKED: {
        "de": (
            "Online-Ausweisfunktion gesperrt oder nicht aktiv",
            "Die Online-Ausweisfunktion Ihres "
            "Ausweises ist gesperrt oder nicht eingeschaltet. Ihr Bürgerbüro kann sie einschalten "
            "bzw. die PIN zurücksetzen.",
        ),
        "en": (
            "Online ID function blocked or not active",
            "The online ID function of your card is "
            "blocked or switched off. Your citizens' office can switch it on or reset the PIN.",
        ),
    },
    FailureKind.TIMEOUT: {
        "de": (
            "Zeit abgelaufen",
            "Die Anmeldung hat zu lange gedauert und wurde beendet. Es wurden keine Daten übermittelt.",
        ),
        "en": ("Time ran out", "The sign-in took too long and was ended. No data was transmitted."),
    },
    FailureKind.DOCUMENT_INVALID: {
        "de": ("Ausweis ungültig", "Der Ausweis ist abgelaufen, gesperrt oder konnte nicht als echt bestätigt werden."),
        "en": ("ID card not valid", "The ID card has expired, has been revoked, or could not be confirmed as genuine."),
    },
    FailureKind.COMMUNICATION: {
        "de": (
            "Verbindungsfehler",
            "Die Verbindung zwischen AusweisApp, Ausweis und Ausweis-Server ist "
            "fehlgeschlagen. Prüfen Sie, ob der Ausweis ruhig auf dem Lesegerät liegt.",
        ),
        "en": (
            "Connection error",
            "The connection between the AusweisApp, the ID card and the eID "
            "server failed. Check that the card lies still on the reader.",
        ),
    },
    FailureKind.SERVER_ERROR: {
        "de": (
            "Technischer Fehler",
            "Der Ausweis-Server hat einen Fehler gemeldet. Bitte versuchen Sie es später noch einmal.",
        ),
        "en": ("Technical error", "The eID server reported an error. Please try again later."),
    },
    FailureKind.OTHER_BROWSER: {
        "de": (
            "Anmeldung zu Ihrem Schutz beendet",
            "Nach dem Auslesen des Ausweises wurde die Anmeldung "
            "in einem anderen Browser geöffnet als in dem, in dem sie begonnen wurde. Zum Schutz der "
            "Daten wurde sie beendet; es wurden keine Daten übermittelt. Bitte beginnen Sie neu und "
            "bleiben Sie dabei im selben Browser.",
        ),
        "en": (
            "Sign-in ended for your protection",
            "After the ID card was read, the sign-in was opened in "
            "a different browser from the one it was started in. To protect the data it was ended; no "
            "data was transmitted. Please start again and stay in the same browser.",
        ),
    },
}

ATTRIBUTE_LABELS: Final[dict[Attribute, dict[str, str]]] = {
    Attribute.DOCUMENT_TYPE: {"de": "Dokumentart", "en": "Document type"},
    Attribute.ISSUING_STATE: {"de": "Ausstellender Staat", "en": "Issuing state"},
    Attribute.DATE_OF_EXPIRY: {"de": "Ablaufdatum", "en": "Date of expiry"},
    Attribute.GIVEN_NAMES: {"de": "Vornamen", "en": "Given names"},
    Attribute.FAMILY_NAMES: {"de": "Familienname", "en": "Family name"},
    Attribute.ARTISTIC_NAME: {"de": "Ordensname, Künstlername", "en": "Religious or artistic name"},
    Attribute.DOCTORAL_DEGREE: {"de": "Doktorgrad", "en": "Doctoral degree"},
    Attribute.DATE_OF_BIRTH: {"de": "Geburtsdatum", "en": "Date of birth"},
    Attribute.PLACE_OF_BIRTH: {"de": "Geburtsort", "en": "Place of birth"},
    Attribute.NATIONALITY: {"de": "Staatsangehörigkeit", "en": "Nationality"},
    Attribute.BIRTH_NAME: {"de": "Geburtsname", "en": "Birth name"},
    Attribute.ADDRESS: {"de": "Anschrift", "en": "Address"},
    Attribute.COMMUNITY_ID: {"de": "Gemeindeschlüssel", "en": "Municipality code"},
    Attribute.RESIDENCE_PERMIT: {"de": "Nebenbestimmungen (Aufenthaltstitel)", "en": "Residence permit notes"},
    Attribute.PSEUDONYM: {
        "de": "Dienst- und kartenspezifisches Kennzeichen (Pseudonym)",
        "en": "Service- and card-specific identifier (pseudonym)",
    },
    Attribute.AGE_VERIFICATION: {"de": "Altersbestätigung", "en": "Age confirmation"},
    Attribute.PLACE_VERIFICATION: {"de": "Wohnortbestätigung", "en": "Place of residence confirmation"},
}


#: Remembers a language chosen explicitly (switch, ``ui_locales``, SAML ``lang``); not personal data.
LANGUAGE_COOKIE: Final = "eidgw-lang"
LANGUAGE_COOKIE_MAX_AGE: Final = 365 * 24 * 3600
_HINT: Final = web.RequestKey("language_hint", str)


def hint_language(request: web.Request, lang: str | None) -> None:
    """A frontend passes on the language the service asked for (OIDC ``ui_locales``); ignored unless de/en."""
    if lang is not None and lang in LANGUAGES:
        request[_HINT] = lang


def chosen_language(request: web.Request) -> str | None:
    """The language somebody chose (``?lang=``, the service's hint, the cookie), None when nobody did."""
    for candidate in (request.query.get("lang"), request.get(_HINT), request.cookies.get(LANGUAGE_COOKIE)):
        if candidate in LANGUAGES:
            return str(candidate)
    return None


def remember_language(*, secure: bool) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An ``on_response_prepare`` hook: a language chosen by ``?lang=`` or a service's hint goes into the
    cookie, so that pages outside the flow (the card page, error pages) keep it."""

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        asked = request.query.get("lang")
        lang = asked if asked in LANGUAGES else request.get(_HINT)
        if lang in LANGUAGES and request.cookies.get(LANGUAGE_COOKIE) != lang:
            # a header, not response.set_cookie(): aiohttp turns cookies into headers before this hook runs
            cookie: SimpleCookie = SimpleCookie()
            cookie[LANGUAGE_COOKIE] = str(lang)
            morsel = cookie[LANGUAGE_COOKIE]
            morsel.update({"max-age": str(LANGUAGE_COOKIE_MAX_AGE), "path": "/", "samesite": "Lax"})
            flags = "; HttpOnly" + ("; Secure" if secure else "")
            response.headers.add("Set-Cookie", morsel.OutputString() + flags)

    return hook


def negotiate_language(request: web.Request) -> str:
    """A chosen language (:func:`chosen_language`) wins; else the best ``Accept-Language`` match; else German."""
    chosen = chosen_language(request)
    if chosen is not None:
        return chosen
    best, best_q = DEFAULT_LANGUAGE, -1.0
    for position, part in enumerate(request.headers.get("Accept-Language", "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGUAGES:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        q -= position * 1e-6  # earlier entries win ties
        if q > best_q and q > 0:
            best, best_q = lang, q
    return best


#: Statuses with a title of their own; the rest share ``http_error_*`` (414 and 431 read alike for a citizen).
_HTTP_STATUS_KEYS: Final = {
    400: "http_400",
    404: "http_404",
    405: "http_405",
    413: "http_413",
    414: "http_431",
    431: "http_431",
}


def http_error_keys(status: int) -> tuple[str, str]:
    """The (title, text) keys of the page for an HTTP error ``status``: a 413 says "too large", not
    "page not available"."""
    prefix = _HTTP_STATUS_KEYS.get(status, "http_error")
    return f"{prefix}_title", f"{prefix}_text"


def text(key: str, lang: str, **values: object) -> str:
    """The text ``key`` in ``lang`` with ``{name}`` placeholders filled."""
    entry = TEXTS[key]
    template = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return template.format(**values) if values else template
