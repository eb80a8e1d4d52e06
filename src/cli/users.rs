//! `newsdesk user ...`: the people who sign in to the admin pages.

use crate::domain::Role;
use crate::passwords;
use crate::store::Store;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use std::io::BufRead;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. A password is generated and printed, unless --password-stdin.
    Add {
        /// The user name they sign in with.
        name: String,
        #[arg(long, value_parser = ["admin", "editor"])]
        role: String,
        /// Read the password from the first line of standard input instead.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (generated and printed, unless --password-stdin); this also
    /// lifts a lock-out and ends the user's sessions.
    Password {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List,
}

fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((passwords::generate(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if let Err(m) = passwords::check_new(&password) {
        bail!("the password {m}");
    }
    Ok((password, false))
}

pub async fn run(store: &Store, command: UserCommand, now: DateTime<Utc>) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let name = crate::http::admin::check_user_name(&name)
                .map_err(|m| anyhow::anyhow!("the user name {m}"))?
                .to_owned();
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let (password, generated) = password(password_stdin)?;
            let hash = passwords::hash(&password)?;
            store
                .users()
                .create(&name, &hash, role, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("added {name} ({})", role.as_str());
            if generated {
                println!("password: {password}");
                println!("(shown once; sign in at /admin/sign-in and change it under your name)");
            }
            Ok(())
        }
        UserCommand::Password {
            name,
            password_stdin,
        } => {
            let user = store
                .users()
                .by_name(&name)
                .await?
                .with_context(|| format!("there is no user {name:?}"))?;
            let (password, generated) = password(password_stdin)?;
            store
                .users()
                .set_password(user.id, &passwords::hash(&password)?, now)
                .await?;
            println!("new password set for {}", user.name);
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
        UserCommand::List => {
            for u in store.users().all().await? {
                println!(
                    "{}\t{}\t{}",
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "enabled" }
                );
            }
            Ok(())
        }
    }
}

/// With `serve --demo` and no user yet: an admin named `admin` with a generated
/// password, printed once on the terminal (not in the log) so the pages can be tried.
pub async fn demo_admin(store: &Store, base_url: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
    if !store.users().all().await?.is_empty() {
        return Ok(());
    }
    let password = passwords::generate();
    store
        .users()
        .create("admin", &passwords::hash(&password)?, Role::Admin, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "demo: sign in at {base_url}/admin as \"admin\" with the password {password} (shown once)"
    );
    Ok(())
}
