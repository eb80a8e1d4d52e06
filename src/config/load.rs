//! The one loader: clap reads the command line, and each setting's variable stands in
//! for a flag that was not given.
//!
//! Where a value comes from, first match wins: the flag; the variable in the process
//! environment; the variable in a `.env` file in the current directory; the default.
//! An empty value (or one of only spaces) counts as unset, wherever it is written.
//!
//! clap reads a variable from the process itself, when the command is built. To apply
//! the rules above (and to let tests give a map instead of the process environment),
//! [`parse`] and [`args_from`] take the variables from an [`Env`]: each argument's value
//! from the environment becomes its default and clap's own reading is switched off.

use clap::error::ErrorKind;
use clap::{ArgMatches, Args, Command, Parser};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

/// After the options in `--help`: where values come from and the rule for empty ones.
pub const AFTER_HELP: &str = "\
Every setting is a flag with an environment variable behind it; a flag beats its variable.
Variables are also read from a .env file in the current directory; the real environment
beats it. An empty variable (or one of only spaces) counts as unset: the default applies.
Secrets (DATABASE_URL's password, NEWSDESK_ADMIN_TOKEN, NEWSDESK_METRICS_TOKEN,
NEWSDESK_SMTP_URL) are never printed.
RUST_LOG sets the log filter (default: info,sqlx=warn); logs go to standard error.";

/// Gives a variable's value, or `None`.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where the variables come from.
pub struct Env<'a> {
    get: Lookup<'a>,
}

impl<'a> Env<'a> {
    /// The variables `get` gives, such as a map in a test.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self { get: Box::new(get) }
    }

    /// `real` first, then the `.env` file at `path` when there is one.
    pub fn with_file(
        real: impl Fn(&str) -> Option<String> + 'a,
        path: &Path,
    ) -> anyhow::Result<Self> {
        let file = read_dotenv(path)?;
        Ok(Self::from_lookup(move |key| {
            non_empty(real(key)).or_else(|| file.get(key).cloned())
        }))
    }

    /// A variable's value; `None` when unset or empty.
    pub fn get(&self, key: &str) -> Option<String> {
        non_empty((self.get)(key))
    }
}

impl Env<'static> {
    /// The process environment, then `.env` in the current directory.
    pub fn process() -> anyhow::Result<Self> {
        Self::with_file(|key| std::env::var(key).ok(), Path::new(".env"))
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The `KEY=value` lines of a `.env` file; none when there is no file. Parse errors do
/// not repeat the line: it may hold a password.
fn read_dotenv(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let lines = match dotenvy::from_path_iter(path) {
        Ok(lines) => lines,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let mut vars = HashMap::new();
    for line in lines {
        match line {
            Ok((key, value)) => {
                vars.insert(key, value);
            }
            Err(dotenvy::Error::LineParse(_, at)) => anyhow::bail!(
                "{}: the entry after the {} read is malformed (at character {at})",
                path.display(),
                vars.len()
            ),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        }
    }
    Ok(vars)
}

/// Parses a command line, taking the variables from `env`.
pub fn parse<P: Parser>(
    argv: impl IntoIterator<Item = impl Into<OsString>>,
    env: &Env,
) -> Result<P, clap::Error> {
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let mut cmd = P::command();
    let mut matches = matches(&cmd, &argv, env)?;
    let parsed = P::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))?;
    for warning in secret_flags(&argv) {
        eprintln!("newsdesk: warning: {warning}");
    }
    Ok(parsed)
}

/// The flags that carry a secret, and their variables.
const SECRET_FLAGS: &[(&str, &str)] = &[
    ("--admin-token", "NEWSDESK_ADMIN_TOKEN"),
    ("--metrics-token", "NEWSDESK_METRICS_TOKEN"),
    ("--smtp-url", "NEWSDESK_SMTP_URL"),
    ("--database-url", "DATABASE_URL"),
];

/// A warning for each secret given on the command line, which every user of the machine
/// can read (`ps`, `/proc/PID/cmdline`): a token always, a URL when it holds a password.
/// The value itself is never repeated.
fn secret_flags(argv: &[OsString]) -> Vec<String> {
    let mut warnings = Vec::new();
    let args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    for (at, arg) in args.iter().enumerate() {
        for (flag, variable) in SECRET_FLAGS {
            let value = match arg.strip_prefix(flag) {
                Some("") => args.get(at + 1).map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            let Some(value) = value else { continue };
            let secret = if flag.ends_with("-url") {
                url::Url::parse(value).is_ok_and(|u| u.password().is_some())
            } else {
                !value.trim().is_empty()
            };
            if secret && !warnings.iter().any(|w: &String| w.contains(flag)) {
                warnings.push(format!(
                    "{flag} on the command line can be read by every user of this machine \
                     (ps, /proc); set {variable} in the environment or in .env instead"
                ));
            }
        }
    }
    warnings
}

/// One group of settings from `env` alone, as a command line without flags would read
/// them: for tests and tools that build settings without a command line.
pub fn args_from<A: Args>(env: &Env) -> Result<A, clap::Error> {
    let mut cmd = A::augment_args(Command::new("newsdesk"));
    let mut matches = matches(&cmd, &[OsString::from("newsdesk")], env)?;
    A::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

fn matches(cmd: &Command, argv: &[OsString], env: &Env) -> Result<ArgMatches, clap::Error> {
    match with_env(cmd.clone(), env).try_get_matches_from(argv) {
        // Help is rendered from the command as declared, which names each variable.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                    | ErrorKind::DisplayVersion
            ) =>
        {
            Err(cmd.clone().try_get_matches_from(argv).err().unwrap_or(e))
        }
        other => other,
    }
}

/// `cmd` with the value `env` gives each variable as the default of its argument.
fn with_env(cmd: Command, env: &Env) -> Command {
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    let mut cmd = cmd.mut_args(|arg| {
        let Some(name) = arg.get_env().and_then(|n| n.to_str()).map(str::to_owned) else {
            return arg;
        };
        let arg = arg.env(None);
        match env.get(&name) {
            Some(value) => arg.default_value(value),
            None => arg,
        }
    });
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, |sub| with_env(sub, env));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    #[test]
    fn secrets_on_the_command_line_are_warned_of_without_their_value() {
        let argv = |a: &[&str]| -> Vec<OsString> { a.iter().map(OsString::from).collect() };
        let said = super::secret_flags(&argv(&[
            "newsdesk",
            "serve",
            "--admin-token",
            "s3cret-token-0123456789",
            "--database-url=postgres://app:pw@db/news",
            "--smtp-url",
            "smtp://mail.example.org:25",
        ]));
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].starts_with("--admin-token on the command line"));
        assert!(said[1].contains("DATABASE_URL"));
        assert!(
            said.iter()
                .all(|w| !w.contains("s3cret") && !w.contains("pw@"))
        );
        assert!(
            super::secret_flags(&argv(&["newsdesk", "--database-url", "sqlite://n.db"])).is_empty()
        );
    }

    use super::*;
    use crate::config::{Config, Settings};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Serve,
    }

    fn map(vars: &[(&'static str, &'static str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn settings(argv: &[&str], vars: &[(&'static str, &'static str)]) -> Settings {
        let vars = map(vars);
        let env = Env::from_lookup(|k| vars.get(k).cloned());
        let cli: Cli = parse(argv, &env).unwrap();
        cli.config.settings().unwrap()
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let s = settings(
            &["newsdesk", "serve"],
            &[
                ("NEWSDESK_BIND", ""),
                ("NEWSDESK_FEED_PAGE_SIZE", "  "),
                ("NEWSDESK_BASE_URL", ""),
                ("NEWSDESK_ADMIN_TOKEN", ""),
                ("NEWSDESK_SITE_NAME", ""),
                ("NEWSDESK_SEND_CONCURRENCY", ""),
                ("NEWSDESK_SMTP_URL", ""),
                ("DATABASE_URL", ""),
            ],
        );
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.feed_page_size, 50);
        assert!(s.base_url_from_bind);
        assert!(s.admin_token.is_none());
        assert_eq!(s.site_name, "newsdesk");
        assert_eq!(s.delivery.concurrency, 4);
        assert!(s.mail.smtp_url.is_none());
        assert_eq!(s.database_url.expose(), "sqlite://newsdesk.db");
    }

    #[test]
    fn a_flag_beats_its_variable_before_or_after_the_command() {
        let vars = [
            ("NEWSDESK_BIND", "127.0.0.1:1111"),
            ("NEWSDESK_FEED_PAGE_SIZE", "7"),
            ("DATABASE_URL", "sqlite://from-variable.db"),
        ];
        let s = settings(
            &[
                "newsdesk",
                "--feed-page-size",
                "9",
                "serve",
                "--bind",
                "127.0.0.1:2222",
            ],
            &vars,
        );
        assert_eq!(s.bind.to_string(), "127.0.0.1:2222");
        assert_eq!(s.feed_page_size, 9);
        assert_eq!(s.database_url.expose(), "sqlite://from-variable.db");
        let s = settings(&["newsdesk", "serve"], &vars);
        assert_eq!(s.bind.to_string(), "127.0.0.1:1111");
        assert_eq!(s.feed_page_size, 7);
    }

    #[test]
    fn the_process_environment_is_not_read_when_a_lookup_is_given() {
        // PATH is set in any test run: were it a setting's variable, clap would read it.
        let cli: Cli = parse(
            ["newsdesk", "serve"],
            &Env::from_lookup(|k| (k == "NEWSDESK_SITE_NAME").then(|| "Lookup".to_owned())),
        )
        .unwrap();
        assert_eq!(cli.config.site_name, "Lookup");
    }

    #[test]
    fn dotenv_is_read_and_the_real_environment_beats_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\nNEWSDESK_SITE_NAME=\"From the file\"\nNEWSDESK_FEED_PAGE_SIZE=12\n\
             NEWSDESK_BIND=127.0.0.1:3333\n",
        )
        .unwrap();
        let real = map(&[("NEWSDESK_FEED_PAGE_SIZE", "34"), ("NEWSDESK_BIND", "")]);
        let env = Env::with_file(|k| real.get(k).cloned(), &path).unwrap();
        let cli: Cli = parse(["newsdesk", "serve"], &env).unwrap();
        let s = cli.config.settings().unwrap();
        assert_eq!(s.site_name, "From the file");
        assert_eq!(s.feed_page_size, 34);
        // Empty in the real environment counts as unset there: the file's value applies.
        assert_eq!(s.bind.to_string(), "127.0.0.1:3333");
    }

    #[test]
    fn no_dotenv_file_is_no_error_and_a_malformed_one_is_reported_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::with_file(|_| None, &dir.path().join(".env")).unwrap();
        assert!(env.get("NEWSDESK_BIND").is_none());
        let path = dir.path().join("bad.env");
        std::fs::write(
            &path,
            "DATABASE_URL=postgres://u:hunter2secret@h/db\nnot a line\n",
        )
        .unwrap();
        let err = format!("{:#}", Env::with_file(|_| None, &path).err().unwrap());
        assert!(err.contains("bad.env"), "{err}");
        assert!(!err.contains("hunter2secret"), "{err}");
    }
}
