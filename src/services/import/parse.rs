//! Reading the CSV: on a blocking thread, a record at a time, each checked into an
//! [`ImportRow`] or a [`BadRow`], sent on in batches.

use super::{BATCH, BadRow};
use crate::domain::{Email, Language, Text};
use crate::store::ImportRow;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use tokio::sync::mpsc;

pub(super) enum Parsed {
    Batch {
        rows: Vec<ImportRow>,
        bad: Vec<BadRow>,
        read: u64,
        bytes: u64,
    },
    Fatal(String),
}

/// Partners by lowercased name: their id and language.
pub(super) type Partners = HashMap<String, (i64, String)>;

/// Where each known column is, from the header line.
struct Columns {
    width: usize,
    email: usize,
    name: Option<usize>,
    partner: Option<usize>,
    language: Option<usize>,
    /// The other columns, kept as attributes.
    extra: Vec<(usize, String)>,
}

impl Columns {
    fn read<R: Read>(reader: &mut csv::Reader<R>) -> Result<Self, String> {
        let headers = reader
            .byte_headers()
            .map_err(|e| format!("the header line could not be read: {e}"))?;
        let mut names = Vec::with_capacity(headers.len());
        for (n, h) in headers.iter().enumerate() {
            let h = std::str::from_utf8(h).map_err(|_| {
                format!(
                    "header column {} is not UTF-8; save the file as UTF-8",
                    n + 1
                )
            })?;
            // A UTF-8 byte order mark would otherwise stick to the first column name.
            names.push(h.trim_start_matches('\u{feff}').trim().to_lowercase());
        }
        let email = names.iter().position(|n| n == "email").ok_or_else(|| {
            format!(
                "the file has no \"email\" column (columns: {})",
                names.join(", ")
            )
        })?;
        let col = |name: &str| names.iter().position(|n| n == name);
        let (name, partner, language) = (col("name"), col("partner"), col("language"));
        // An export carries each subscriber's status for reading; an import never sets it.
        let known = [Some(email), name, partner, language, col("status")];
        let extra = names
            .iter()
            .enumerate()
            .filter(|(i, _)| !known.contains(&Some(*i)))
            .map(|(i, n)| (i, n.clone()))
            .collect();
        Ok(Self {
            width: names.len(),
            email,
            name,
            partner,
            language,
            extra,
        })
    }
}

/// Runs on a blocking thread: reads records, checks them, sends batches.
pub(super) fn parse<R: Read>(input: R, partners: Partners, tx: mpsc::Sender<Parsed>) {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    match Columns::read(&mut reader) {
        Ok(columns) => read_rows(&mut reader, &columns, &partners, &tx),
        Err(m) => {
            let _ = tx.blocking_send(Parsed::Fatal(m));
        }
    }
}

fn read_rows<R: Read>(
    reader: &mut csv::Reader<R>,
    columns: &Columns,
    partners: &Partners,
    tx: &mpsc::Sender<Parsed>,
) {
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
                match check_row(&record, line, columns, partners) {
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
            let batch = Parsed::Batch {
                rows: std::mem::take(&mut rows),
                bad: std::mem::take(&mut bad),
                read,
                bytes: reader.position().byte(),
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

fn check_row(
    record: &csv::ByteRecord,
    line: u64,
    columns: &Columns,
    partners: &Partners,
) -> Result<ImportRow, BadRow> {
    let raw_email = record
        .get(columns.email)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let bad = |reason: String| BadRow {
        line,
        email: raw_email.chars().take(254).collect(),
        reason,
    };
    let width = columns.width;
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
    let email = Email::parse(&field(Some(columns.email), "email")?)
        .map_err(|e| bad(format!("email {e}")))?;
    let name = Text::parse(&field(columns.name, "name")?, 200, false, false)
        .map_err(|e| bad(format!("name {e}")))?;
    let partner_name = field(columns.partner, "partner")?;
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
    let language = field(columns.language, "language")?;
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
    for (i, key) in &columns.extra {
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
