//! Subscriber tokens and what the public subscribe form leads to.

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Confirm,
    Unsubscribe,
    Preferences,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Unsubscribe => "unsubscribe",
            Self::Preferences => "preferences",
        }
    }
}

/// Whom a live token speaks for, and for which list (`None`: every list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrant {
    pub subscriber_id: i64,
    pub list_id: Option<i64>,
}

/// What a subscription request led to; the caller answers the same whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionOutcome {
    /// A confirmation mail must go to the address.
    NeedsConfirmation { subscriber_id: i64 },
    /// Single opt-in: the address is on the list now.
    Joined { subscriber_id: i64 },
    /// Already a confirmed member, or blocked: nothing to send.
    NothingToDo,
}
