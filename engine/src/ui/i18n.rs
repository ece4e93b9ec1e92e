//! The pages' texts in German and English, chosen by the request's
//! `Accept-Language` (else [`super::UiSettings::default_language`]). The
//! chrome (navigation, headings, buttons, labels) is translated; values
//! from the definitions (field names and descriptions, check messages) are
//! shown as the definitions and checks write them.

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "de" => Some(Self::De),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The first language of `Accept-Language` (by weight) the pages have.
    pub fn negotiate(header: Option<&str>, default: Lang) -> Lang {
        let Some(header) = header else { return default };
        let mut tags: Vec<(f32, Lang)> = header
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let lang = Lang::parse(it.next()?)?;
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0));
        tags.first().map_or(default, |t| t.1)
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::De => "de",
            Self::En => "en",
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Self::De => &DE,
            Self::En => &EN,
        }
    }
}

/// Every text of the chrome.
#[derive(Debug)]
pub struct Texts {
    pub app: &'static str,
    pub skip: &'static str,
    pub queue: &'static str,
    pub my_orders: &'static str,
    pub new_order: &'static str,
    pub definitions: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub token: &'static str,
    pub token_hint: &'static str,
    pub link_confirm: &'static str,
    pub order: &'static str,
    pub age: &'static str,
    pub kind: &'static str,
    pub device: &'static str,
    pub requester: &'static str,
    pub warnings: &'static str,
    pub errors: &'static str,
    pub accepted_warnings: &'static str,
    pub claimed_by: &'static str,
    pub until: &'static str,
    pub nobody: &'static str,
    pub all: &'static str,
    pub mine: &'static str,
    pub empty_queue: &'static str,
    pub state: &'static str,
    pub updated: &'static str,
    pub fields: &'static str,
    pub timeline: &'static str,
    pub changed: &'static str,
    pub decisions: &'static str,
    pub notifications: &'static str,
    pub jobs: &'static str,
    pub claim: &'static str,
    pub unclaim: &'static str,
    pub take_over: &'static str,
    pub take_over_question: &'static str,
    pub accept: &'static str,
    pub reject: &'static str,
    pub withdraw: &'static str,
    pub comment: &'static str,
    pub edit_fields: &'static str,
    pub save: &'static str,
    pub submit: &'static str,
    pub check_and_submit: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub one_per_line: &'static str,
    pub json_hint: &'static str,
    pub no_orders: &'static str,
    pub back: &'static str,
    pub problem: &'static str,
    pub staff_work: &'static str,
    pub claim_lapses: &'static str,
}

pub static EN: Texts = Texts {
    app: "Orders",
    skip: "Skip to content",
    queue: "Waiting orders",
    my_orders: "My orders",
    new_order: "Place an order",
    definitions: "Definitions",
    sign_in: "Sign in",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    token: "Bearer token",
    token_hint: "Paste the token `auftrag token issue --person PERS_KEY` printed, or use a sign-in link from `auftrag login-link`.",
    link_confirm: "Sign in with this one-time link",
    order: "Order",
    age: "Waiting for",
    kind: "Type",
    device: "Object",
    requester: "Requester",
    warnings: "Warnings",
    errors: "Errors",
    accepted_warnings: "Accepted warnings",
    claimed_by: "Claimed by",
    until: "until",
    nobody: "nobody",
    all: "All",
    mine: "Claimed by me",
    empty_queue: "No order is waiting.",
    state: "State",
    updated: "Updated",
    fields: "Fields",
    timeline: "Timeline",
    changed: "Changed",
    decisions: "Authorization decisions",
    notifications: "Notifications",
    jobs: "Jobs",
    claim: "Claim",
    unclaim: "Release claim",
    take_over: "Take over",
    take_over_question: "Another person has claimed this order. Take it over and go on?",
    accept: "Accept",
    reject: "Reject",
    withdraw: "Withdraw",
    comment: "Comment",
    edit_fields: "Edit fields",
    save: "Save and check again",
    submit: "Submit",
    check_and_submit: "Check and place the order",
    required: "required",
    optional: "optional",
    one_per_line: "one per line",
    json_hint: "JSON",
    no_orders: "No orders yet.",
    back: "Back",
    problem: "That did not work",
    staff_work: "Work on this order",
    claim_lapses: "A claim lapses after",
};

pub static DE: Texts = Texts {
    app: "Aufträge",
    skip: "Zum Inhalt",
    queue: "Wartende Aufträge",
    my_orders: "Meine Aufträge",
    new_order: "Auftrag stellen",
    definitions: "Definitionen",
    sign_in: "Anmelden",
    sign_out: "Abmelden",
    signed_in_as: "Angemeldet als",
    token: "Bearer-Token",
    token_hint: "Fügen Sie das Token ein, das `auftrag token issue --person PERS_KEY` ausgab, oder nutzen Sie einen Anmeldelink von `auftrag login-link`.",
    link_confirm: "Mit diesem einmaligen Link anmelden",
    order: "Auftrag",
    age: "Wartet seit",
    kind: "Art",
    device: "Objekt",
    requester: "Auftraggeber",
    warnings: "Warnungen",
    errors: "Fehler",
    accepted_warnings: "Akzeptierte Warnungen",
    claimed_by: "Übernommen von",
    until: "bis",
    nobody: "niemandem",
    all: "Alle",
    mine: "Von mir übernommen",
    empty_queue: "Kein Auftrag wartet.",
    state: "Zustand",
    updated: "Geändert",
    fields: "Felder",
    timeline: "Verlauf",
    changed: "Geändert",
    decisions: "Autorisierungsentscheidungen",
    notifications: "Benachrichtigungen",
    jobs: "Jobs",
    claim: "Übernehmen",
    unclaim: "Freigeben",
    take_over: "Übernehmen",
    take_over_question: "Eine andere Person hat diesen Auftrag übernommen. Trotzdem übernehmen und fortfahren?",
    accept: "Annehmen",
    reject: "Ablehnen",
    withdraw: "Zurückziehen",
    comment: "Kommentar",
    edit_fields: "Felder bearbeiten",
    save: "Speichern und neu prüfen",
    submit: "Absenden",
    check_and_submit: "Prüfen und Auftrag stellen",
    required: "Pflichtfeld",
    optional: "optional",
    one_per_line: "einer pro Zeile",
    json_hint: "JSON",
    no_orders: "Noch keine Aufträge.",
    back: "Zurück",
    problem: "Das hat nicht geklappt",
    staff_work: "Auftrag bearbeiten",
    claim_lapses: "Eine Übernahme verfällt nach",
};

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn negotiates_by_weight() {
        assert_eq!(
            Lang::negotiate(Some("de-DE,de;q=0.9,en;q=0.8"), Lang::En),
            Lang::De
        );
        assert_eq!(
            Lang::negotiate(Some("fr, en;q=0.5, de;q=0.4"), Lang::De),
            Lang::En
        );
        assert_eq!(Lang::negotiate(Some("fr"), Lang::De), Lang::De);
        assert_eq!(Lang::negotiate(None, Lang::En), Lang::En);
    }
}
