//! `newsdesk user ...`: the people who sign in to the admin pages.

use crate::domain::Role;
use crate::passwords;
use crate::services::{ServiceError, users};
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

/// The password from standard input (checked), or `None` to have one generated.
fn password(from_stdin: bool) -> anyhow::Result<Option<String>> {
    if !from_stdin {
        return Ok(None);
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
    Ok(Some(password))
}

/// A service's refusal in the words the command line uses.
fn failed(e: ServiceError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn run(store: &Store, command: UserCommand, now: DateTime<Utc>) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            // The name is checked before a password is read from standard input.
            let name =
                users::check_name(&name).map_err(|m| anyhow::anyhow!("the user name {m}"))?;
            Role::parse(&role).map_err(anyhow::Error::msg)?;
            let given = password(password_stdin)?;
            let added = users::add_user(store, now, name, &role, given)
                .await
                .map_err(failed)?;
            println!("added {} ({})", added.user.name, added.user.role.as_str());
            if added.generated {
                println!("password: {}", added.password);
                println!("(shown once; sign in at /admin/sign-in and change it under your name)");
            }
            Ok(())
        }
        UserCommand::Password {
            name,
            password_stdin,
        } => {
            let user = match users::user_by_name(store, &name).await {
                Ok(user) => user,
                Err(ServiceError::NotFound(_)) => bail!("there is no user {name:?}"),
                Err(e) => return Err(failed(e)),
            };
            let given = password(password_stdin)?;
            let set = users::set_password(store, now, user, given)
                .await
                .map_err(failed)?;
            println!("new password set for {}", set.user.name);
            if set.generated {
                println!("password: {}", set.password);
            }
            Ok(())
        }
        UserCommand::List => {
            for u in users::list_users(store).await.map_err(failed)? {
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
    if let Some(password) = users::demo_admin(store, now).await.map_err(failed)? {
        println!(
            "demo: sign in at {base_url}/admin as \"admin\" with the password {password} (shown once)"
        );
        println!(
            "demo: lost it? `newsdesk user password admin` sets and prints a new one \
             (run it with this DATABASE_URL)"
        );
    }
    Ok(())
}

/// At every start with nobody able to sign in yet: how to make the first admin (and,
/// once made, how to get a new password), in the log where the operator looks.
pub async fn first_start_hint(store: &Store) -> anyhow::Result<()> {
    if users::list_users(store).await.map_err(failed)?.is_empty() {
        tracing::warn!(
            "no admin user yet: `newsdesk user add NAME --role admin` adds one and prints \
             its password; `newsdesk user password NAME` prints a new one later"
        );
    }
    Ok(())
}
