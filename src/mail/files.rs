//! The `.eml` outbox: each message written as a file into a directory, for development
//! and for sites that hand the files to another program.

use super::transport::{Transport, Wire};
use super::{BuiltMail, MailError};
use anyhow::Context as _;
use async_trait::async_trait;
use lettre::{AsyncFileTransport, AsyncTransport as _, Tokio1Executor};
use std::path::{Path, PathBuf};

pub(super) struct FileOutbox {
    dir: PathBuf,
    files: AsyncFileTransport<Tokio1Executor>,
}

impl FileOutbox {
    /// Creates `dir` when it is missing.
    pub(super) fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the outbox directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            files: AsyncFileTransport::new(dir),
        })
    }
}

#[async_trait]
impl Transport for FileOutbox {
    fn describe(&self) -> String {
        format!("files in {}/", self.dir.display())
    }

    /// Files keep lettre's output as it is.
    fn wire(&self) -> Wire {
        Wire::Formatted
    }

    async fn send(&self, mail: &BuiltMail) -> Result<(), MailError> {
        self.files
            .send_raw(&mail.envelope, &mail.raw)
            .await
            .map(drop)
            .map_err(|e| {
                MailError::Temporary(format!(
                    "could not write the message into {}: {e}",
                    self.dir.display()
                ))
            })
    }
}
