//! CSV import of subscribers: parsed on a blocking thread and applied a batch at a
//! time inside one transaction, so a file of any size goes through in flat memory,
//! and the caller chooses between "all good rows" and "all or nothing".

use crate::domain::{
    Email, JoinedVia, Language, MailingList, MembershipStatus, OptIn, SubscriberStatus, Text,
};
use crate::store::{ImportCounts, ImportRow, ImportTerms, Store};
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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

enum Parsed {
    Batch {
        rows: Vec<ImportRow>,
        bad: Vec<BadRow>,
        read: u64,
        bytes: u64,
    },
    Fatal(String),
}

/// A problem with the file as a whole (no `email` column, not CSV at all).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FileError(pub String);

/// Imports subscribers from CSV. `progress` is told the bytes read so far.
pub async fn import_csv<R: Read + Send + 'static>(
    store: &Store,
    input: R,
    options: &ImportOptions,
    now: DateTime<Utc>,
    progress: impl Fn(u64),
) -> anyhow::Result<ImportReport> {
    let partners: HashMap<String, (i64, String)> = store
        .people()
        .partners()
        .await?
        .into_iter()
        .map(|p| (p.name.to_lowercase(), (p.id, p.language)))
        .collect();
    let (tx, mut rx) = mpsc::channel::<Parsed>(2);
    let parser = tokio::task::spawn_blocking(move || parse(input, partners, tx));

    let confirmed = options.consent_source.is_some()
        || options
            .list
            .as_ref()
            .is_some_and(|l| l.opt_in == OptIn::Single);
    let terms = ImportTerms {
        list_id: options.list.as_ref().map(|l| l.id),
        member_status: if confirmed {
            MembershipStatus::Confirmed
        } else {
            MembershipStatus::Pending
        },
        subscriber_status: if confirmed {
            SubscriberStatus::Confirmed
        } else {
            SubscriberStatus::Pending
        },
        consent_source: options.consent_source.clone(),
        via: options.via,
    };
    let mut session = store.import().begin(terms, now).await?;
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
                return Err(FileError(message).into());
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

/// Runs on a blocking thread: reads records, checks them, sends batches.
fn parse<R: Read>(input: R, partners: HashMap<String, (i64, String)>, tx: mpsc::Sender<Parsed>) {
    let fatal = |tx: &mpsc::Sender<Parsed>, m: String| {
        let _ = tx.blocking_send(Parsed::Fatal(m));
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = match reader.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return fatal(&tx, format!("the header line could not be read: {e}")),
    };
    let mut names = Vec::with_capacity(headers.len());
    for (n, h) in headers.iter().enumerate() {
        let Ok(h) = std::str::from_utf8(h) else {
            return fatal(
                &tx,
                format!(
                    "header column {} is not UTF-8; save the file as UTF-8",
                    n + 1
                ),
            );
        };
        // A UTF-8 byte order mark would otherwise stick to the first column name.
        names.push(h.trim_start_matches('\u{feff}').trim().to_lowercase());
    }
    let Some(email_col) = names.iter().position(|n| n == "email") else {
        return fatal(
            &tx,
            format!(
                "the file has no \"email\" column (columns: {})",
                names.join(", ")
            ),
        );
    };
    let col = |name: &str| names.iter().position(|n| n == name);
    let (name_col, partner_col, language_col) = (col("name"), col("partner"), col("language"));
    // An export carries each subscriber's status for reading; an import never sets it.
    let status_col = col("status");
    let extra: Vec<(usize, String)> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            ![
                Some(email_col),
                name_col,
                partner_col,
                language_col,
                status_col,
            ]
            .contains(&Some(*i))
        })
        .map(|(i, n)| (i, n.clone()))
        .collect();

    let mut rows = Vec::with_capacity(BATCH);
    let mut bad = Vec::new();
    let mut read = 0u64;
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                read += 1;
                let line = record.position().map(|p| p.line()).unwrap_or(line);
                match check_row(
                    &record,
                    line,
                    names.len(),
                    email_col,
                    name_col,
                    partner_col,
                    language_col,
                    &extra,
                    &partners,
                ) {
                    Ok(row) => rows.push(row),
                    Err(b) => bad.push(b),
                }
            }
            Err(e) => {
                read += 1;
                bad.push(BadRow {
                    line: e.position().map(|p| p.line()).unwrap_or(line),
                    email: String::new(),
                    reason: format!("not readable as CSV: {e}"),
                });
                // The reader cannot resync inside a broken record; stop here.
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    break;
                }
            }
        }
        if rows.len() + bad.len() >= BATCH {
            let bytes = reader.position().byte();
            let batch = Parsed::Batch {
                rows: std::mem::take(&mut rows),
                bad: std::mem::take(&mut bad),
                read,
                bytes,
            };
            read = 0;
            if tx.blocking_send(batch).is_err() {
                return;
            }
        }
    }
    let bytes = reader.position().byte();
    let _ = tx.blocking_send(Parsed::Batch {
        rows,
        bad,
        read,
        bytes,
    });
}

#[allow(clippy::too_many_arguments)]
fn check_row(
    record: &csv::ByteRecord,
    line: u64,
    width: usize,
    email_col: usize,
    name_col: Option<usize>,
    partner_col: Option<usize>,
    language_col: Option<usize>,
    extra: &[(usize, String)],
    partners: &HashMap<String, (i64, String)>,
) -> Result<ImportRow, BadRow> {
    let raw_email = record
        .get(email_col)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let bad = |reason: String| BadRow {
        line,
        email: raw_email.chars().take(254).collect(),
        reason,
    };
    if record.len() != width {
        return Err(bad(format!(
            "has {} fields, the header has {width}",
            record.len()
        )));
    }
    let field = |i: Option<usize>, name: &str| -> Result<String, BadRow> {
        match i.and_then(|i| record.get(i)) {
            None => Ok(String::new()),
            Some(b) => std::str::from_utf8(b)
                .map(|s| s.trim().to_owned())
                .map_err(|_| bad(format!("{name} is not UTF-8 text; save the file as UTF-8"))),
        }
    };
    let email =
        Email::parse(&field(Some(email_col), "email")?).map_err(|e| bad(format!("email {e}")))?;
    let name = Text::parse(&field(name_col, "name")?, 200, false, false)
        .map_err(|e| bad(format!("name {e}")))?;
    let partner_name = field(partner_col, "partner")?;
    let partner = if partner_name.is_empty() {
        None
    } else {
        let found = partners.get(&partner_name.to_lowercase());
        Some(found.ok_or_else(|| {
            bad(format!(
                "partner {partner_name:?} is not known; add the partner first"
            ))
        })?)
    };
    let language = field(language_col, "language")?;
    let language = if language.is_empty() {
        partner
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| "en".into())
    } else {
        Language::parse(&language)
            .map_err(|e| bad(format!("language {e}")))?
            .as_str()
            .to_owned()
    };
    let mut attributes = BTreeMap::new();
    for (i, key) in extra {
        let value = field(Some(*i), key)?;
        if value.chars().count() > 1000 || value.chars().any(|c| c.is_control()) {
            return Err(bad(format!(
                "{key} must be at most 1000 characters without control characters"
            )));
        }
        if !value.is_empty() {
            attributes.insert(key.clone(), value);
        }
    }
    Ok(ImportRow {
        line,
        email,
        name: name.into_string(),
        partner_id: partner.map(|(id, _)| *id),
        language,
        attributes: serde_json::to_string(&attributes).unwrap_or_else(|_| "{}".into()),
    })
}

/// Writes subscribers as CSV with the import's columns (email, name, partner,
/// language, then one column per attribute) plus their status, a page at a time.
/// Importing the file again changes nothing.
pub async fn export_csv(
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
