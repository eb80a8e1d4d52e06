//! Partners and subscribers: search, filter by list and status, add, edit, change
//! status, memberships, and a subscriber's history (joined, confirmed, digests,
//! bounces). Adapters over `services::people` and `services::subscriptions`.

mod partners;
mod subscribers;

pub use partners::{create_partner, delete_partner, partner, partners, update_partner};
pub use subscribers::{
    create_subscriber, set_membership, set_subscriber_status, subscriber, subscribers,
    update_subscriber,
};

use super::page::{Choice, choices};
use crate::domain::{MailingList, Partner, Subscriber};
use serde::Serialize;

fn partner_choices(partners: &[Partner], selected: &str) -> Vec<Choice> {
    choices(
        partners.iter().map(|p| (p.id.to_string(), p.name.clone())),
        selected,
    )
}

fn list_choices(lists: &[MailingList], selected: &str) -> Vec<Choice> {
    choices(
        lists.iter().map(|l| (l.slug.clone(), l.name.clone())),
        selected,
    )
}

/// A subscriber in a table.
#[derive(Serialize)]
struct SubscriberRow {
    id: i64,
    email: String,
    name: String,
    partner: String,
    status: &'static str,
    language: String,
}

impl SubscriberRow {
    fn of(s: &Subscriber) -> Self {
        Self {
            id: s.id,
            email: s.email.clone(),
            name: s.name.clone(),
            partner: s.partner_name.clone().unwrap_or_default(),
            status: s.status.as_str(),
            language: s.language.clone(),
        }
    }
}
