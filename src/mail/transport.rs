//! Where a built message goes: the one thing the mailer asks of SMTP or of the `.eml`
//! outbox. The mailer picks one when it is made and from then on only talks to it
//! through [`Transport`], so the rest of the code never learns which it has.

use super::{BuiltMail, MailError};
use async_trait::async_trait;

/// The form in which a transport takes a message's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// The message as formatted, as a file holds it.
    Formatted,
    /// Dot-stuffed with its final dot, as it goes after SMTP's DATA: building it so
    /// up front spares the sending task a copy of the message.
    DotStuffed,
}

/// A way to hand over built messages. Shared by every sending task.
#[async_trait]
pub(super) trait Transport: Send + Sync {
    /// Where mail goes, for the start-up log: never a user name or password.
    fn describe(&self) -> String;

    /// The form [`Transport::send`] wants the data in.
    fn wire(&self) -> Wire;

    /// Bodies may go as 8bit text (the SMTP server offered 8BITMIME) rather than
    /// quoted-printable.
    fn takes_8bit(&self) -> bool {
        false
    }

    /// Learns, once, what building needs to know before the first message (whether
    /// 8bit bodies are taken). Failing is fine: the sends report it.
    async fn warm_up(&self) {}

    /// Hands one message over.
    async fn send(&self, mail: &BuiltMail) -> Result<(), MailError>;
}
