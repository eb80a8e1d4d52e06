//! CSV import of subscribers: parsed on a blocking thread and applied a batch at a
//! time inside one transaction, so a file of any size goes through in flat memory,
//! and the caller chooses between "all good rows" and "all or nothing".

mod parse;

use super::subscriptions::opt_in::{admission, consent_for_new, new_address_status};
use super::{ServiceError, ServiceResult};
use crate::domain::{Consent, JoinedVia, Joining, MailingList, MembershipStatus};
use crate::store::{ImportCounts, ImportTerms, Store};
use anyhow::Context;
use chrono::{DateTime, Utc};
use parse::{Parsed, parse};
use serde::{Deserialize, Serialize};
use std::io::Read;
use tokio::sync::mpsc;

/// What to do when some rows are bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Apply the good rows, report the bad ones.
    GoodRows,
    /// Apply nothing unless every row is good.
    AllOrNothing,
}

impl ImportMode {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "good_rows" => Ok(Self::GoodRows),
            "all_or_nothing" => Ok(Self::AllOrNothing),
            _ => Err(format!(
                "must be \"good_rows\" or \"all_or_nothing\" (got {s:?})"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub list: Option<MailingList>,
    pub mode: ImportMode,
    pub dry_run: bool,
    /// Stated consent (e.g. "signed partner agreement 2023"): contacts join confirmed
    /// even on a double opt-in list.
    pub consent_source: Option<String>,
    pub via: JoinedVia,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BadRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub email: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    pub mode: ImportMode,
    /// Whether the changes were kept (false for a dry run, or all-or-nothing with bad rows).
    pub applied: bool,
    /// Data rows read, good and bad.
    pub rows: u64,
    #[serde(flatten)]
    pub counts: ImportCounts,
    pub bad_rows: u64,
    /// The first bad rows, with their line numbers and reasons.
    pub bad_row_details: Vec<BadRow>,
    pub list: Option<String>,
}

/// At most this many bad rows are described; the rest are counted.
pub const BAD_ROW_DETAILS: usize = 1000;
const BATCH: usize = 2000;

/// The field a problem with the file as a whole (no `email` column, not CSV at all)
/// is reported under, as `ServiceError::Invalid`.
pub const FILE_FIELD: &str = "file";

/// How imported contacts are let in, by the opt-in rule: new members join confirmed
/// with stated consent or on a single opt-in list, else pending (an import sends no
/// mail); members already on the list keep their standing (the store's
/// `ON CONFLICT DO NOTHING` is that rule's "unchanged").
fn terms(options: &ImportOptions) -> ImportTerms {
    let opt_in = options.list.as_ref().map(|l| l.opt_in);
    let stated = options
        .consent_source
        .clone()
        .map(|source| Consent { source, ip: None });
    let member_status = opt_in
        .and_then(|o| admission(Joining::Import, o, stated.is_some(), None, None).membership)
        .unwrap_or(MembershipStatus::Pending);
    // Only a stated consent is recorded; joining a single opt-in list confirms too.
    let confirmed = consent_for_new(opt_in, stated, || Consent {
        source: "import: single opt-in list".into(),
        ip: None,
    })
    .is_some();
    ImportTerms {
        list_id: options.list.as_ref().map(|l| l.id),
        member_status,
        subscriber_status: new_address_status(confirmed),
        consent_source: options.consent_source.clone(),
        via: options.via,
    }
}

/// Imports subscribers from CSV. `progress` is told the bytes read so far. A file
/// that cannot be read as a whole is `Invalid` under [`FILE_FIELD`].
///
/// It takes the store alone: an import sends no mail, so the command line needs no
/// mail transport for it.
pub async fn import_csv<R: Read + Send + 'static>(
    store: &Store,
    input: R,
    options: &ImportOptions,
    now: DateTime<Utc>,
    progress: impl Fn(u64),
) -> ServiceResult<ImportReport> {
    let partners: parse::Partners = store
        .people()
        .partners()
        .await?
        .into_iter()
        .map(|p| (p.name.to_lowercase(), (p.id, p.language)))
        .collect();
    let (tx, mut rx) = mpsc::channel::<Parsed>(2);
    let parser = tokio::task::spawn_blocking(move || parse(input, partners, tx));

    let mut session = store.import().begin(terms(options), now).await?;
    let mut report = ImportReport {
        dry_run: options.dry_run,
        mode: options.mode,
        applied: false,
        rows: 0,
        counts: ImportCounts::default(),
        bad_rows: 0,
        bad_row_details: Vec::new(),
        list: options.list.as_ref().map(|l| l.slug.clone()),
    };
    while let Some(parsed) = rx.recv().await {
        match parsed {
            Parsed::Fatal(message) => {
                session.rollback().await?;
                return Err(ServiceError::invalid(FILE_FIELD, message));
            }
            Parsed::Batch {
                rows,
                bad,
                read,
                bytes,
            } => {
                report.rows += read;
                let (counts, repeated) = session.apply(&rows).await?;
                report.counts += counts;
                let mut bad = bad;
                bad.extend(repeated.into_iter().map(|r| BadRow {
                    line: r.line,
                    email: r.email.to_string(),
                    reason: "the address appears earlier in the file".into(),
                }));
                bad.sort_by_key(|b| b.line);
                report.bad_rows += bad.len() as u64;
                let room = BAD_ROW_DETAILS.saturating_sub(report.bad_row_details.len());
                report.bad_row_details.extend(bad.into_iter().take(room));
                progress(bytes);
            }
        }
    }
    parser.await.context("the CSV parser stopped")?;
    let keep = !options.dry_run && (options.mode == ImportMode::GoodRows || report.bad_rows == 0);
    if keep {
        session.commit().await?;
        report.applied = true;
    } else {
        session.rollback().await?;
    }
    Ok(report)
}

/// Writes subscribers as CSV with the import's columns (email, name, partner,
/// language, then one column per attribute) plus their status, a page at a time.
/// Importing the file again changes nothing.
pub async fn export_csv(
    store: &Store,
    list: Option<i64>,
    out: impl std::io::Write,
) -> ServiceResult<u64> {
    Ok(write_csv(store, list, out).await?)
}

/// Subscribers (everyone, or a list's members) as CSV in an anonymous temporary file,
/// rewound to its start: written to disk first so a download of any size streams in
/// flat memory.
pub async fn export_spooled(store: &Store, list: Option<i64>) -> ServiceResult<std::fs::File> {
    let spool = tempfile::tempfile().context("creating the export spool")?;
    let mut writer = std::io::BufWriter::new(spool.try_clone().context("opening the spool")?);
    write_csv(store, list, &mut writer).await?;
    std::io::Write::flush(&mut writer).context("writing the export spool")?;
    drop(writer);
    let mut spool = spool;
    std::io::Seek::rewind(&mut spool).context("rewinding the export spool")?;
    Ok(spool)
}

async fn write_csv(
    store: &Store,
    list: Option<i64>,
    mut out: impl std::io::Write,
) -> anyhow::Result<u64> {
    const PAGE: u32 = 1000;
    // First pass: the attribute names, so each gets its own column.
    let mut keys = std::collections::BTreeSet::new();
    let mut after = 0;
    loop {
        let page = store
            .people()
            .subscribers_after(list, after, PAGE, false)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for s in &page {
            keys.extend(s.attributes.keys().cloned());
        }
    }
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let mut header = vec![
        "email".to_owned(),
        "name".into(),
        "partner".into(),
        "language".into(),
        "status".into(),
    ];
    header.extend(keys.iter().cloned());
    w.write_record(&header)?;
    out.write_all(&w.into_inner().context("writing CSV")?)?;
    let mut after = 0;
    let mut count = 0;
    loop {
        let page = store
            .people()
            .subscribers_after(list, after, PAGE, false)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for s in &page {
            let mut record = vec![
                s.email.as_str(),
                s.name.as_str(),
                s.partner_name.as_deref().unwrap_or(""),
                s.language.as_str(),
                s.status.as_str(),
            ];
            record.extend(
                keys.iter()
                    .map(|k| s.attributes.get(k).map(String::as_str).unwrap_or("")),
            );
            w.write_record(&record)?;
            count += 1;
        }
        out.write_all(&w.into_inner().context("writing CSV")?)?;
    }
    Ok(count)
}
