//! A claimed batch made ready to send: the digests it belongs to, what each reader was
//! sent before, and every message rendered and built on a blocking thread, off the one
//! that talks to the mail transport and the database.

use super::Outbox;
use super::fence::Fence;
use super::identity::DeliveryKey;
use crate::app::App;
use crate::digest::render::{DigestContext, GroupRenderer, PersonalLinks};
use crate::domain::{IsoWeek, MailingList, Selection};
use crate::mail::{BuiltMail, MailError, OutgoingMail};
use crate::services::subscriptions::list_id_header;
use crate::store::ClaimedDelivery;
use crate::templates::Templates;
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything the same for every delivery of a digest, loaded once.
pub(super) struct Bundle {
    list: MailingList,
    period: IsoWeek,
    selection: Selection,
    list_id: String,
    /// The templates this digest's messages are rendered with: the set in use when the
    /// bundle was made. When the overrides change, the next batch makes a new bundle.
    templates: Arc<Templates>,
    /// Group renderings of this digest: the templates run once per group of readers.
    renderer: GroupRenderer,
}

/// Which claimed row a message is, and how often it was tried.
#[derive(Debug, Clone, Copy)]
pub(super) struct Delivery {
    pub id: i64,
    pub digest_id: i64,
    pub subscriber_id: i64,
    pub attempts: u32,
}

/// A claimed delivery, rendered and built: ready to go (or known not to go).
pub(super) struct Prepared {
    pub delivery: Delivery,
    pub work: Work,
    /// The claim it was taken by: sent only while that still holds it.
    pub fence: Arc<Fence>,
}

pub(super) enum Work {
    /// The message, and what it carries (to record once sent): its items and the
    /// hash of its links' token.
    Send {
        mail: BuiltMail,
        items: Vec<(i64, DateTime<Utc>)>,
        link_hash: String,
    },
    /// Everything was sent to this reader before.
    Skip,
    /// A reader-local delivery first taken more than the list's grace period after
    /// its reader's time: not sent (the reason says when it was due).
    Missed(String),
    /// The templates failed: our fault, not the recipient's.
    RenderFailed(String),
    /// The message cannot be built (a bad address, say): as a permanent refusal.
    Refused(MailError),
}

/// Items each subscriber was sent before, and when.
type SentBefore = HashMap<i64, HashMap<i64, DateTime<Utc>>>;

impl Outbox {
    async fn bundle(&self, digest_id: i64) -> anyhow::Result<Arc<Bundle>> {
        let mut bundles = self.bundles.lock().await;
        let templates = self.app.templates.current();
        // A bundle rendered with templates no longer in use is made again.
        if let Some(b) = bundles.get(&digest_id)
            && Arc::ptr_eq(&b.templates, &templates)
        {
            return Ok(b.clone());
        }
        let store = &self.app.store;
        let digest = store
            .digests()
            .by_id(digest_id)
            .await?
            .context("a claimed delivery's digest")?;
        let list = store
            .lists()
            .by_id(digest.list_id)
            .await?
            .context("a digest's list")?;
        let period = IsoWeek::parse(&digest.period).map_err(anyhow::Error::msg)?;
        let selection = store.digests().items(digest_id).await?;
        // Old digests' bundles are not needed once their rows are done.
        if bundles.len() > 16 {
            bundles.clear();
        }
        let bundle = Arc::new(Bundle {
            list_id: list_id_header(&list.slug, &self.app.ids),
            list,
            period,
            selection,
            templates,
            renderer: GroupRenderer::new(),
        });
        bundles.insert(digest_id, bundle.clone());
        Ok(bundle)
    }

    /// Readies a claimed batch: the digests, what each reader was sent before, the
    /// personal links of each message (their token's hash is stored with the mark that
    /// records the message as sent), and every message rendered and built.
    pub(super) async fn prepare(
        &self,
        mut claimed: Vec<ClaimedDelivery>,
        fence: Arc<Fence>,
    ) -> anyhow::Result<Vec<Prepared>> {
        // Each reader's institution in their language, where it has a name in it.
        let mut partners: Vec<i64> = claimed
            .iter()
            .filter_map(|d| d.subscriber.partner_id)
            .collect();
        partners.sort_unstable();
        partners.dedup();
        let names = self.app.store.people().partner_names(&partners).await?;
        for d in &mut claimed {
            d.subscriber.name_partner_in_language(&names);
        }
        let mut bundles: HashMap<i64, Arc<Bundle>> = HashMap::new();
        for d in &claimed {
            if let std::collections::hash_map::Entry::Vacant(slot) = bundles.entry(d.digest_id) {
                slot.insert(self.bundle(d.digest_id).await?);
            }
        }
        let sent_before = self.sent_before(&claimed, &bundles).await?;
        // Messages are built with what the transport takes (8bit bodies) in mind.
        self.app.mailer.warm_up().await;
        let app = self.app.clone();
        let key = self.delivery_key().await?;
        tokio::task::spawn_blocking(move || {
            build_batch(&app, &key, &fence, claimed, &bundles, sent_before)
        })
        .await
        .context("building a batch of messages")
    }

    /// The items of these digests each claimed reader was sent before.
    async fn sent_before(
        &self,
        claimed: &[ClaimedDelivery],
        bundles: &HashMap<i64, Arc<Bundle>>,
    ) -> anyhow::Result<SentBefore> {
        let subscriber_ids: Vec<i64> = claimed.iter().map(|d| d.subscriber.id).collect();
        let mut item_ids: Vec<i64> = bundles
            .values()
            .flat_map(|b| {
                b.selection
                    .coming_up
                    .iter()
                    .chain(&b.selection.news)
                    .map(|i| i.id)
            })
            .collect();
        item_ids.sort_unstable();
        item_ids.dedup();
        let mut sent_before: SentBefore = HashMap::new();
        let delivered = self
            .db
            .lock()
            .await
            .delivered_items(&subscriber_ids, &item_ids)
            .await?;
        for ((subscriber, item), at) in delivered {
            sent_before.entry(subscriber).or_default().insert(item, at);
        }
        Ok(sent_before)
    }
}

/// Why a reader-local delivery is not sent, when it was first taken (on the database's
/// clock, as its due time is) more than the list's grace period after its reader's time.
/// The first claim decides: a delivery taken in time and tried again later (a
/// temporary failure, a crash) still goes.
fn missed(d: &ClaimedDelivery, list: &MailingList) -> Option<String> {
    let due = d.due_at?;
    let grace = chrono::Duration::minutes(i64::from(list.schedule.grace_minutes));
    (d.built_at > due + grace).then(|| {
        format!(
            "missed: due at {} (the reader's local time), first taken at {}, past the list's grace of {} minutes",
            due.format("%Y-%m-%d %H:%M UTC"),
            d.built_at.format("%Y-%m-%d %H:%M:%S UTC"),
            list.schedule.grace_minutes
        )
    })
}

/// Personal links, rendering and building for a claimed batch: plain CPU work, done
/// away from the async thread.
fn build_batch(
    app: &App,
    key: &DeliveryKey,
    fence: &Arc<Fence>,
    claimed: Vec<ClaimedDelivery>,
    bundles: &HashMap<i64, Arc<Bundle>>,
    mut sent_before: SentBefore,
) -> Vec<Prepared> {
    let base = &app.settings.base_url;
    let mut prepared = Vec::with_capacity(claimed.len());
    let no_items = HashMap::new();
    for d in claimed {
        let bundle = &bundles[&d.digest_id];
        // One token for both links of the message: the delivery's own, the same at
        // every attempt.
        let (token, link_hash) = key.link_token(d.id);
        let sent = sent_before.remove(&d.subscriber.id);
        let ctx = DigestContext {
            list: &bundle.list,
            period: bundle.period,
            selection: &bundle.selection,
            site_name: &app.settings.site_name,
            base_url: base,
            languages: &app.settings.languages,
        };
        // The links in the message lead to the pages in the reader's language; the
        // one-click header stays at the address every mail client posts to.
        let pages = ctx.pages_base(&d.subscriber.language);
        let links = PersonalLinks {
            unsubscribe_url: format!("{pages}/unsubscribe/{token}"),
            preferences_url: format!("{pages}/preferences/{token}"),
        };
        let one_click = format!("{base}/unsubscribe/{token}");
        let delivery = Delivery {
            id: d.id,
            digest_id: d.digest_id,
            subscriber_id: d.subscriber.id,
            attempts: d.attempts,
        };
        if let Some(reason) = missed(&d, &bundle.list) {
            prepared.push(Prepared {
                delivery,
                work: Work::Missed(reason),
                fence: fence.clone(),
            });
            continue;
        }
        let work = match bundle.renderer.render_for(
            &bundle.templates,
            &ctx,
            &d.subscriber,
            sent.as_ref().unwrap_or(&no_items),
            &links,
        ) {
            Ok(None) => Work::Skip,
            Err(e) => Work::RenderFailed(format!("the digest could not be rendered: {e:#}")),
            Ok(Some(rendered)) => {
                let mail = OutgoingMail {
                    to_email: d.subscriber.email,
                    to_name: d.subscriber.name,
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    list_unsubscribe: Some(one_click),
                    list_id: Some(bundle.list_id.clone()),
                };
                match app
                    .mailer
                    .build_mail_as(&mail, &key.message(d.id, d.built_at))
                {
                    Ok(mail) => Work::Send {
                        mail,
                        items: rendered.items,
                        link_hash,
                    },
                    Err(e) => Work::Refused(e),
                }
            }
        };
        prepared.push(Prepared {
            delivery,
            work,
            fence: fence.clone(),
        });
    }
    prepared
}
