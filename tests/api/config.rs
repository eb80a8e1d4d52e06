//! The configuration as an operator meets it: the real binary, its `--help`, `.env` and
//! the environment.

use std::path::Path;
use std::process::{Command, Output};

fn newsdesk(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn");
    for (key, value) in vars {
        command.env(key, value);
    }
    command.output().expect("the newsdesk binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The variables of the README's configuration table (the contract).
fn documented_variables() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut variables: Vec<String> = section
        .split('`')
        .filter(|word| {
            (word.starts_with("NEWSDESK_") || *word == "DATABASE_URL")
                && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    variables.sort();
    variables.dedup();
    variables
}

#[test]
fn serve_help_lists_every_documented_variable_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let variables = documented_variables();
    assert!(variables.len() >= 29, "{variables:?}");
    let output = newsdesk(
        dir.path(),
        &["serve", "--help"],
        &[
            (
                "DATABASE_URL",
                "postgres://u:hunter2secret@db.example/newsdesk",
            ),
            ("NEWSDESK_ADMIN_TOKEN", "a-very-secret-admin-token"),
            (
                "NEWSDESK_SMTP_URL",
                "smtps://u:smtp-secret-pw@mail.example.edu",
            ),
        ],
    );
    assert!(output.status.success());
    let help = text(&output);
    for variable in &variables {
        assert!(
            help.contains(&format!("[env: {variable}]")),
            "{variable} missing:\n{help}"
        );
    }
    for secret in [
        "hunter2secret",
        "a-very-secret-admin-token",
        "smtp-secret-pw",
    ] {
        assert!(!help.contains(secret), "{help}");
    }
    assert!(help.contains("[default: 50]"), "{help}");
    assert!(help.contains("An empty variable"), "{help}");
}

#[test]
fn dotenv_is_read_a_real_variable_beats_it_and_a_flag_beats_both() {
    let dir = tempfile::tempdir().unwrap();
    let db = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    std::fs::write(
        dir.path().join(".env"),
        format!("# local settings\nDATABASE_URL={}\n", db("from-file.db")),
    )
    .unwrap();
    let cases = [
        (vec![], vec![], "from-file.db"),
        (
            vec![("DATABASE_URL", String::new())],
            vec![],
            "from-file.db",
        ),
        (
            vec![("DATABASE_URL", db("from-env.db"))],
            vec![],
            "from-env.db",
        ),
        (
            vec![("DATABASE_URL", db("from-env.db"))],
            vec!["--database-url".to_owned(), db("from-flag.db")],
            "from-flag.db",
        ),
    ];
    for (vars, flags, expected) in cases {
        let mut args = vec!["migrate"];
        args.extend(flags.iter().map(String::as_str));
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let output = newsdesk(dir.path(), &args, &vars);
        let said = text(&output);
        assert!(output.status.success(), "{vars:?} {args:?}: {said}");
        assert!(said.contains(expected), "{vars:?} {args:?}: {said}");
        assert!(dir.path().join(expected).exists(), "{expected}");
    }
}

#[test]
fn a_bad_value_is_named_without_its_secret_and_stops_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let output = newsdesk(
        dir.path(),
        &["migrate"],
        &[(
            "DATABASE_URL",
            "mysql://u:hunter2secret@db.example/newsdesk",
        )],
    );
    let said = text(&output);
    assert!(!output.status.success());
    assert!(said.contains("DATABASE_URL"), "{said}");
    assert!(!said.contains("hunter2secret"), "{said}");

    let output = newsdesk(
        dir.path(),
        &["migrate", "--feed-page-size", "0"],
        &[("DATABASE_URL", "sqlite::memory:")],
    );
    let said = text(&output);
    assert!(!output.status.success());
    assert!(said.contains("NEWSDESK_FEED_PAGE_SIZE"), "{said}");
}

#[test]
fn a_secret_given_as_a_flag_works_and_is_warned_of_without_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("n.db").display());
    let token = "flag-token-that-must-not-be-printed";
    let output = newsdesk(
        dir.path(),
        &["migrate", "--admin-token", token],
        &[("DATABASE_URL", db.as_str())],
    );
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains(
            "newsdesk: warning: --admin-token on the command line can be read by every user"
        ) && said.contains("set NEWSDESK_ADMIN_TOKEN in the environment"),
        "{said}"
    );
    assert!(!said.contains(token), "{said}");
    // In the environment: no warning.
    let output = newsdesk(
        dir.path(),
        &["migrate"],
        &[
            ("DATABASE_URL", db.as_str()),
            ("NEWSDESK_ADMIN_TOKEN", token),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(!text(&output).contains("warning"), "{}", text(&output));
}
