"""What Bürgerbüro staff read on the kiosk dashboard, in German and English.

Staff are not PC/SC experts: every state and every error code the agent reports gets a sentence that
says what happened and what to do; the code itself stays available, folded away, for the IT. A code
without an entry gets a general sentence (never the bare code alone). Every text exists in both
languages (a test checks it).
"""

from __future__ import annotations

from typing import Final

from cardreader.model import ReaderState, ServiceState
from eid_gateway.kiosks.registry import OFFLINE, REFUSED, UNKNOWN

Texts = dict[str, dict[str, str]]

UI: Final[Texts] = {
    "title": {"de": "Kiosk-Übersicht", "en": "Kiosk overview"},
    "page_title": {"de": "Kiosk-Übersicht – eid-gateway", "en": "Kiosk overview – eid-gateway"},
    "other_language": {"de": "English", "en": "Deutsch"},
    "other_language_label": {"de": "Switch to English", "en": "Auf Deutsch wechseln"},
    "as_of": {"de": "Stand:", "en": "As of:"},
    "offline_after": {
        "de": "Ein Kiosk gilt als offline, wenn er {seconds} s lang nichts meldet.",
        "en": "A kiosk counts as offline after {seconds} s without a report.",
    },
    "live": {"de": "Live-Aktualisierung aktiv.", "en": "Live updates on."},
    "reload": {"de": "Die Seite lädt sich alle {seconds} s neu.", "en": "The page reloads every {seconds} s."},
    "counts": {"de": "Übersicht nach Zustand", "en": "Summary by state"},
    "col_kiosk": {"de": "Kiosk", "en": "Kiosk"},
    "col_status": {"de": "Zustand", "en": "State"},
    "col_readers": {"de": "Lesegeräte", "en": "Card readers"},
    "col_seen": {"de": "Letzte Meldung", "en": "Last report"},
    "col_changed": {"de": "Letzte Änderung", "en": "Last change"},
    "never": {"de": "noch nie", "en": "never"},
    "offline_since": {"de": "Agent offline seit", "en": "Agent offline since"},
    "refused_since": {"de": "Zugang abgelehnt seit", "en": "Access refused since"},
    "technical": {"de": "Technische Angaben", "en": "Technical details"},
    "readers_unknown": {
        "de": "Zustand der Lesegeräte unbekannt, solange der Kiosk nicht meldet.",
        "en": "Card reader state unknown while the kiosk does not report.",
    },
    "card_pace": {"de": "Ausweis-Chip: {pace}", "en": "ID card chip: {pace}"},
    "reader_pace": {
        "de": "Lesegerät mit eigenem PACE (Komfortleser): {caps}",
        "en": "Reader does PACE itself (comfort reader): {caps}",
    },
    "reader_pace_none": {
        "de": "Lesegerät meldet PACE, aber keine Funktion",
        "en": "Reader reports PACE, but no function",
    },
    "agent_queue": {
        "de": "Agent: {queue} Meldung(en) warten, {dropped} verworfen",
        "en": "Agent: {queue} report(s) waiting, {dropped} dropped",
    },
    # relative times, filled in by dashboard.js from the page's data-texts
    "ago_s": {"de": "vor {n} s", "en": "{n} s ago"},
    "ago_min": {"de": "vor {n} min", "en": "{n} min ago"},
    "ago_h": {"de": "vor {n} h", "en": "{n} h ago"},
    "ago_d": {"de": "vor {n} Tagen", "en": "{n} days ago"},
}

#: The staff login page and the signed-in line of the dashboard.
LOGIN: Final[Texts] = {
    "title": {"de": "Anmeldung für Mitarbeitende", "en": "Staff sign-in"},
    "intro": {
        "de": "Melden Sie sich mit Ihrem persönlichen Zugang an, um die Kiosk-Übersicht zu sehen.",
        "en": "Sign in with your personal account to see the kiosk overview.",
    },
    "name": {"de": "Benutzername", "en": "User name"},
    "password": {"de": "Passwort", "en": "Password"},
    "submit": {"de": "Anmelden", "en": "Sign in"},
    "wrong": {
        "de": "Benutzername oder Passwort ist falsch. Bitte prüfen Sie die Eingabe.",
        "en": "The user name or password is wrong. Please check what you typed.",
    },
    "locked": {
        "de": "Zu viele fehlgeschlagene Anmeldungen. Bitte warten Sie etwa {minutes} Minute(n). "
        "Wenn Sie Ihr Passwort vergessen haben, wenden Sie sich an die IT.",
        "en": "Too many failed sign-ins. Please wait about {minutes} minute(s). "
        "If you have forgotten your password, ask your IT.",
    },
    "stale": {
        "de": "Das Formular war veraltet. Bitte melden Sie sich noch einmal an.",
        "en": "The form was out of date. Please sign in again.",
    },
    "signed_out": {"de": "Sie sind abgemeldet.", "en": "You are signed out."},
    "signed_in_as": {"de": "Angemeldet als {name} ({role})", "en": "Signed in as {name} ({role})"},
    "role_view": {"de": "Ansicht", "en": "view"},
    "role_admin": {"de": "Verwaltung", "en": "admin"},
    "logout": {"de": "Abmelden", "en": "Sign out"},
}

#: The one word per kiosk (status word of the registry) and per reader.
LABELS: Final[Texts] = {
    UNKNOWN: {"de": "noch keine Meldung", "en": "no report yet"},
    OFFLINE: {"de": "Agent offline", "en": "Agent offline"},
    REFUSED: {"de": "Zugang abgelehnt", "en": "Access refused"},
    ServiceState.PCSC_UNAVAILABLE: {"de": "Kartendienst gestört", "en": "Card service down"},
    ServiceState.NO_READERS: {"de": "kein Lesegerät", "en": "no card reader"},
    ReaderState.ID_CARD: {"de": "Ausweis erkannt", "en": "ID card detected"},
    ReaderState.OTHER_CARD: {"de": "andere Karte", "en": "other card"},
    ReaderState.CARD_UNREADABLE: {"de": "Karte nicht lesbar", "en": "card not readable"},
    ReaderState.CARD_MUTE: {"de": "Karte antwortet nicht", "en": "card does not answer"},
    ReaderState.IN_USE: {"de": "in Benutzung", "en": "in use"},
    ReaderState.EMPTY: {"de": "bereit (leer)", "en": "ready (empty)"},
    ReaderState.UNAVAILABLE: {"de": "Lesegerät nicht verfügbar", "en": "card reader unavailable"},
}

#: What happened and what to do, per status word / reader state (shown under the label). States that
#: need no action have none.
ADVICE: Final[Texts] = {
    UNKNOWN: {
        "de": "Der Kiosk hat sich seit dem Start des Gateways nicht gemeldet. Ist der Kiosk-PC an?",
        "en": "The kiosk has not reported since the gateway started. Is the kiosk PC switched on?",
    },
    "offline_stopped": {
        "de": "Der Kiosk-Agent wurde beendet (Kiosk-PC heruntergefahren oder Dienst gestoppt). "
        "Kiosk-PC einschalten bzw. die IT bitten, den Dienst eid-kiosk-agent zu starten.",
        "en": "The kiosk agent was stopped (kiosk PC shut down or service stopped). Switch the kiosk PC on "
        "or ask IT to start the eid-kiosk-agent service.",
    },
    "offline_silent": {
        "de": "Der Kiosk meldet sich nicht mehr (abgestürzt, kein Netz oder Strom). Kiosk-PC und "
        "Netzwerkkabel prüfen; wenn er läuft, die IT informieren.",
        "en": "The kiosk stopped reporting (crashed, no network or power). Check the kiosk PC and its "
        "network cable; if it is running, tell IT.",
    },
    REFUSED: {
        "de": "Das Gateway lehnt die Zugangsdaten dieses Kiosks ab (falsch, abgelaufen oder ersetzt). "
        "Die IT muss die Kiosk-Zugangsdaten neu ausstellen (eid-gateway kiosk-credential).",
        "en": "The gateway refuses this kiosk's credential (wrong, expired or replaced). IT has to issue "
        "new kiosk credentials (eid-gateway kiosk-credential).",
    },
    ServiceState.NO_READERS: {
        "de": "Am Kiosk ist kein Kartenlesegerät angeschlossen. USB-Kabel des Lesegeräts prüfen.",
        "en": "No card reader is attached to the kiosk. Check the card reader's USB cable.",
    },
    ReaderState.CARD_UNREADABLE: {
        "de": "Die Karte konnte nicht gelesen werden. Karte herausnehmen und neu auflegen.",
        "en": "The card could not be read. Take the card out and put it back.",
    },
    ReaderState.CARD_MUTE: {
        "de": "Die Karte antwortet nicht. Karte richtig auflegen; wenn es bleibt, ist die Karte defekt.",
        "en": "The card does not answer. Place it properly; if it stays so, the card is faulty.",
    },
    ReaderState.OTHER_CARD: {
        "de": "Die Karte ist kein Personalausweis mit Online-Ausweisfunktion (z. B. Bank- oder Gesundheitskarte).",
        "en": "The card is not an ID card with the online ID function (e.g. a bank or health card).",
    },
    ReaderState.IN_USE: {
        "de": "Ein anderes Programm (meist die AusweisApp) benutzt die Karte gerade. Abwarten.",
        "en": "Another program (usually the AusweisApp) is using the card right now. Wait.",
    },
    ReaderState.UNAVAILABLE: {
        "de": "Das Lesegerät ist angemeldet, aber nicht nutzbar. Lesegerät ab- und wieder anstecken.",
        "en": "The reader is listed but cannot be used. Unplug the reader and plug it in again.",
    },
}

#: Per technical detail the agent reports (PC/SC error names and card-reading findings): what it
#: means for staff. Looked up before the state's general advice.
DETAILS: Final[Texts] = {
    "SCARD_E_NO_SERVICE": {
        "de": "Der Kartendienst (pcscd) auf dem Kiosk-PC läuft nicht. Kiosk-PC neu starten oder die IT "
        "bitten, pcscd zu starten.",
        "en": "The card service (pcscd) on the kiosk PC is not running. Restart the kiosk PC or ask IT to start pcscd.",
    },
    "SCARD_E_SERVICE_STOPPED": {
        "de": "Der Kartendienst (pcscd) wurde beendet. Er startet meist von selbst neu; sonst Kiosk-PC neu starten.",
        "en": "The card service (pcscd) stopped. It usually restarts by itself; otherwise restart the kiosk PC.",
    },
    "SCARD_F_COMM_ERROR": {
        "de": "Die Verbindung zum Kartendienst (pcscd) ist abgerissen. Er startet meist von selbst neu; "
        "bleibt es, Kiosk-PC neu starten.",
        "en": "The connection to the card service (pcscd) broke. It usually comes back by itself; if not, "
        "restart the kiosk PC.",
    },
    "SCARD_E_NO_READERS_AVAILABLE": {
        "de": "Kein Lesegerät gefunden. USB-Kabel des Lesegeräts prüfen.",
        "en": "No card reader found. Check the card reader's USB cable.",
    },
    "SCARD_E_READER_UNAVAILABLE": {
        "de": "Das Lesegerät ist nicht erreichbar (abgezogen?). Lesegerät wieder anstecken.",
        "en": "The card reader cannot be reached (unplugged?). Plug it in again.",
    },
    "SCARD_W_REMOVED_CARD": {
        "de": "Die Karte wurde während des Lesens entfernt. Karte erneut auflegen und liegen lassen.",
        "en": "The card was removed while being read. Put it back and leave it there.",
    },
    "SCARD_W_UNRESPONSIVE_CARD": {
        "de": "Die Karte antwortet nicht. Karte richtig auflegen; wenn es bleibt, ist die Karte defekt.",
        "en": "The card does not answer. Place it properly; if it stays so, the card is faulty.",
    },
    "SCARD_W_UNPOWERED_CARD": {
        "de": "Die Karte wird nicht mit Strom versorgt. Karte herausnehmen und neu auflegen.",
        "en": "The card gets no power. Take it out and put it back.",
    },
    "SCARD_E_SHARING_VIOLATION": {
        "de": "Ein anderes Programm (meist die AusweisApp) benutzt die Karte gerade. Abwarten.",
        "en": "Another program (usually the AusweisApp) is using the card right now. Wait.",
    },
    "no EF.CardAccess": {
        "de": "Auf der Karte fehlen die Daten eines Personalausweises (EF.CardAccess): es ist eine andere "
        "Karte. Den Personalausweis auflegen.",
        "en": "The card lacks the data of a German ID card (EF.CardAccess): it is another card. Put the "
        "ID card on the reader.",
    },
    "EF.CardAccess malformed": {
        "de": "Die Ausweisdaten der Karte sind fehlerhaft. Karte neu auflegen; bleibt es, ist die Karte "
        "kein gültiger Personalausweis.",
        "en": "The card's ID data are damaged. Put the card back; if it stays so, it is not a valid ID card.",
    },
    "malformed response": {
        "de": "Die Karte antwortet fehlerhaft (schlecht aufgelegt oder defekt). Karte herausnehmen und neu auflegen.",
        "en": "The card answers garbled (badly placed or faulty). Take the card out and put it back.",
    },
}
UNKNOWN_DETAIL: Final = {
    "de": "Das Lesegerät meldet einen Fehler. Karte neu auflegen; bleibt es, die IT informieren.",
    "en": "The card reader reports an error. Put the card back; if it stays so, tell IT.",
}

#: The reader's own PACE functions (PC/SC part 10 GetReaderPACECapabilities), spelled out.
PACE_CAPABILITIES: Final[Texts] = {
    "eID": {"de": "Online-Ausweisfunktion (eID)", "en": "online ID function (eID)"},
    "eSign": {"de": "qualifizierte elektronische Signatur (eSign)", "en": "qualified electronic signature (eSign)"},
    "generic": {"de": "PACE auch für andere Anwendungen", "en": "PACE for other applications too"},
    "DestroyPACEChannel": {"de": "kann den PACE-Kanal wieder schließen", "en": "can close the PACE channel again"},
}


def t(table: Texts, key: str, lang: str, **values: object) -> str:
    """The text *key* of *table* in *lang* (German when missing), ``{name}`` placeholders filled."""
    entry = table[key]
    text = entry.get(lang) or entry["de"]
    return text.format(**values) if values else text


def detail_text(detail: str, lang: str) -> str:
    """What a technical detail means for staff; a general sentence for codes without an entry."""
    entry = DETAILS.get(detail, UNKNOWN_DETAIL)
    return entry.get(lang) or entry["de"]
