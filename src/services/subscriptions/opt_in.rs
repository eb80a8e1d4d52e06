//! The opt-in rule, once: where someone stands on a list after asking to join it or
//! being put on it. The store carries out the [`Admission`] this returns; it decides
//! nothing itself.

use crate::domain::{Admission, Consent, Joining, MembershipStatus, OptIn, SubscriberStatus};

/// The rule. `consent` is a consent stated by whoever adds them (an admin, an import);
/// `subscriber` is where their address stands (`None`: not stored yet) and `member`
/// where they stand on the list (`None`: never on it).
///
/// - The public form: a blocked address gets nothing, nor does a confirmed member with
///   a confirmed address; a single opt-in list takes them at once; a double opt-in
///   list makes them pending and mails a link (a member already confirmed keeps that
///   standing and is only mailed).
/// - The preference page (a mailed link proved the address is theirs): a confirmed
///   address joins at once; anyone else changes nothing there.
/// - An admin acts on purpose: stated consent, a single opt-in list or an address
///   confirmed already join at once; otherwise pending, with a confirmation mail.
/// - An import never signs up again someone who is on the list (or left it); new
///   members join confirmed with stated consent or on a single opt-in list, else
///   pending. Imports send no mail.
pub fn admission(
    joining: Joining,
    opt_in: OptIn,
    consent: bool,
    subscriber: Option<SubscriberStatus>,
    member: Option<MembershipStatus>,
) -> Admission {
    let at_once = consent || opt_in == OptIn::Single;
    let confirmed_address = subscriber == Some(SubscriberStatus::Confirmed);
    match joining {
        Joining::Form => {
            if subscriber == Some(SubscriberStatus::Blocked)
                || (member == Some(MembershipStatus::Confirmed) && confirmed_address)
            {
                Admission::UNCHANGED
            } else if at_once {
                Admission::CONFIRMED
            } else if member == Some(MembershipStatus::Confirmed) {
                Admission::REMINDED
            } else {
                Admission::PENDING_MAILED
            }
        }
        Joining::Preferences => {
            if confirmed_address && member != Some(MembershipStatus::Confirmed) {
                Admission::CONFIRMED
            } else {
                Admission::UNCHANGED
            }
        }
        Joining::Admin => {
            if at_once || confirmed_address {
                Admission::CONFIRMED
            } else {
                Admission::PENDING_MAILED
            }
        }
        Joining::Import => match member {
            Some(_) => Admission::UNCHANGED,
            None if at_once => Admission::CONFIRMED,
            None => Admission::PENDING_SILENT,
        },
    }
}

/// The consent recorded with a new address: the one stated, else, when joining a
/// single opt-in list, the joining itself (`source`). An address with a consent
/// recorded is stored confirmed.
pub fn consent_for_new(
    opt_in: Option<OptIn>,
    stated: Option<Consent>,
    source: impl FnOnce() -> Consent,
) -> Option<Consent> {
    stated.or_else(|| (opt_in == Some(OptIn::Single)).then(source))
}

/// The status a new address is stored with, by the consent recorded for it.
pub fn new_address_status(consent: bool) -> SubscriberStatus {
    if consent {
        SubscriberStatus::Confirmed
    } else {
        SubscriberStatus::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Joining::{Admin, Form, Import, Preferences};
    use MembershipStatus as M;
    use OptIn::{Double, Single};
    use SubscriberStatus as S;

    const UNCHANGED: Admission = Admission::UNCHANGED;
    const CONFIRMED: Admission = Admission::CONFIRMED;
    const MAILED: Admission = Admission::PENDING_MAILED;
    const SILENT: Admission = Admission::PENDING_SILENT;
    const REMINDED: Admission = Admission::REMINDED;

    /// How they join, the list's kind, stated consent, where the address and the
    /// membership stood: what the rule decides.
    type Case = (Joining, OptIn, bool, Option<S>, Option<M>, Admission);
    /// The list's kind, stated consent: the consent recorded, the address's status.
    type NewAddress = (Option<OptIn>, Option<Consent>, Option<&'static str>, S);

    #[test]
    fn the_opt_in_rule() {
        #[rustfmt::skip]
        let table: &[Case] = &[
            // The public form.
            (Form, Double, false, None, None, MAILED),
            (Form, Single, false, None, None, CONFIRMED),
            (Form, Double, false, Some(S::Pending), Some(M::Pending), MAILED),
            (Form, Double, false, Some(S::Confirmed), None, MAILED),
            (Form, Double, false, Some(S::Confirmed), Some(M::Confirmed), UNCHANGED),
            (Form, Single, false, Some(S::Confirmed), Some(M::Confirmed), UNCHANGED),
            (Form, Double, false, Some(S::Pending), Some(M::Confirmed), REMINDED),
            (Form, Single, false, Some(S::Pending), Some(M::Confirmed), CONFIRMED),
            (Form, Double, false, Some(S::Confirmed), Some(M::Unsubscribed), MAILED),
            (Form, Single, false, Some(S::Unsubscribed), Some(M::Unsubscribed), CONFIRMED),
            (Form, Double, false, Some(S::Bounced), None, MAILED),
            (Form, Double, false, Some(S::Blocked), None, UNCHANGED),
            (Form, Single, false, Some(S::Blocked), None, UNCHANGED),
            // The preference page.
            (Preferences, Double, false, Some(S::Confirmed), None, CONFIRMED),
            (Preferences, Single, false, Some(S::Confirmed), Some(M::Unsubscribed), CONFIRMED),
            (Preferences, Double, false, Some(S::Confirmed), Some(M::Pending), CONFIRMED),
            (Preferences, Double, false, Some(S::Confirmed), Some(M::Confirmed), UNCHANGED),
            (Preferences, Single, false, Some(S::Pending), None, UNCHANGED),
            (Preferences, Double, false, Some(S::Unsubscribed), Some(M::Unsubscribed), UNCHANGED),
            (Preferences, Double, false, Some(S::Blocked), None, UNCHANGED),
            // An admin: a new contact, or one already stored.
            (Admin, Double, false, None, None, MAILED),
            (Admin, Double, true, None, None, CONFIRMED),
            (Admin, Single, false, None, None, CONFIRMED),
            (Admin, Double, false, Some(S::Pending), None, MAILED),
            (Admin, Double, false, Some(S::Confirmed), None, CONFIRMED),
            (Admin, Double, true, Some(S::Pending), Some(M::Unsubscribed), CONFIRMED),
            (Admin, Double, false, Some(S::Unsubscribed), Some(M::Unsubscribed), MAILED),
            // An import.
            (Import, Double, false, None, None, SILENT),
            (Import, Double, true, None, None, CONFIRMED),
            (Import, Single, false, None, None, CONFIRMED),
            (Import, Double, false, Some(S::Confirmed), None, SILENT),
            (Import, Single, true, Some(S::Confirmed), Some(M::Unsubscribed), UNCHANGED),
            (Import, Double, true, Some(S::Pending), Some(M::Pending), UNCHANGED),
            (Import, Single, false, Some(S::Confirmed), Some(M::Confirmed), UNCHANGED),
        ];
        for &(joining, opt_in, consent, subscriber, member, expected) in table {
            assert_eq!(
                admission(joining, opt_in, consent, subscriber, member),
                expected,
                "{joining:?} {opt_in:?} consent={consent} {subscriber:?} {member:?}"
            );
        }
    }

    #[test]
    fn someone_who_left_is_never_signed_up_again_without_asking() {
        for opt_in in [Single, Double] {
            for consent in [false, true] {
                for subscriber in S::ALL {
                    let got = admission(
                        Import,
                        opt_in,
                        consent,
                        Some(*subscriber),
                        Some(M::Unsubscribed),
                    );
                    assert_eq!(got, UNCHANGED);
                }
            }
        }
    }

    #[test]
    fn a_new_address_is_confirmed_by_stated_consent_or_a_single_opt_in_list() {
        let joined = || Consent {
            source: "joined".into(),
            ip: None,
        };
        let stated = Consent {
            source: "signed".into(),
            ip: None,
        };
        #[rustfmt::skip]
        let table: &[NewAddress] = &[
            (None, None, None, S::Pending),
            (Some(Double), None, None, S::Pending),
            (Some(Single), None, Some("joined"), S::Confirmed),
            (None, Some(stated.clone()), Some("signed"), S::Confirmed),
            (Some(Double), Some(stated.clone()), Some("signed"), S::Confirmed),
            (Some(Single), Some(stated.clone()), Some("signed"), S::Confirmed),
        ];
        for (opt_in, consent, source, status) in table {
            let got = consent_for_new(*opt_in, consent.clone(), joined);
            assert_eq!(got.as_ref().map(|c| c.source.as_str()), *source);
            assert_eq!(new_address_status(got.is_some()), *status);
        }
    }
}
