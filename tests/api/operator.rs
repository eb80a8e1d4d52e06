//! What an operator meets on the command line: commands that need a database say where
//! they looked instead of creating one, `newsdesk backup`, and the first start's hints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn commands_other_than_serve_migrate_and_demo_do_not_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let looked = dir.path().canonicalize().unwrap().join("newsdesk.db");
    for args in [
        &["user", "list"][..],
        &["subscribers", "export"],
        &[
            "digest", "preview", "--list", "partners", "--period", "2023-W45",
        ],
        &["backup", "copy.db"],
    ] {
        let output = newsdesk(dir.path(), args, &[]);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.contains(&format!("there is no database at {}", looked.display())),
            "{args:?}: {message}"
        );
        assert!(message.contains("newsdesk migrate"), "{message}");
        assert!(
            !looked.exists() && !dir.path().join("copy.db").exists(),
            "{args:?} created a file"
        );
    }
    // A URL of another folder: the path looked at is that one.
    let output = newsdesk(
        dir.path(),
        &["user", "list"],
        &[("DATABASE_URL", "sqlite:///nonexistent/dir/news.db")],
    );
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("/nonexistent/dir/news.db"));

    // The three that create one do.
    let output = newsdesk(dir.path(), &["migrate"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(looked.exists());
    let output = newsdesk(dir.path(), &["user", "list"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn backup_copies_the_database_and_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    assert!(newsdesk(dir.path(), &["demo"], &[]).status.success());
    let output = newsdesk(dir.path(), &["backup", "copy.db"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("copy.db") && said.contains("7 items, integrity_check ok"),
        "{said}"
    );
    // The copy is a database newsdesk serves from: the commands see the demo in it.
    let copy = format!("sqlite://{}", dir.path().join("copy.db").display());
    let output = newsdesk(
        dir.path(),
        &["subscribers", "export"],
        &[("DATABASE_URL", &copy)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("@"));

    // Never over an existing file.
    let before = std::fs::metadata(dir.path().join("copy.db")).unwrap().len();
    let output = newsdesk(dir.path(), &["backup", "copy.db"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("exists already"));
    assert_eq!(
        std::fs::metadata(dir.path().join("copy.db")).unwrap().len(),
        before
    );

    // PostgreSQL: the pg_dump line, without the password; nothing is connected to.
    let output = newsdesk(
        dir.path(),
        &["backup", "n.dump"],
        &[(
            "DATABASE_URL",
            "postgres://newsdesk:hunter2secret@db.invalid/newsdesk",
        )],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(
            "pg_dump --format=custom --file=n.dump 'postgres://newsdesk@db.invalid/newsdesk'"
        ),
        "{message}"
    );
    assert!(!message.contains("hunter2secret"), "{message}");
}

/// Starts `serve` on a random port in `dir`, and returns what it printed (standard
/// output and error) once `wanted` appeared, or after 20 s.
fn first_lines_of_serve(dir: &Path, extra: &[&str], wanted: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .arg("serve")
        .args(extra)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "info")
        .env("NEWSDESK_BIND", "127.0.0.1:0")
        .env("NEWSDESK_WORKERS", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    let mut seen = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(wanted) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn the_first_start_says_how_to_get_an_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let seen = first_lines_of_serve(dir.path(), &[], "newsdesk user add");
    assert!(
        seen.contains("no admin user yet")
            && seen.contains("`newsdesk user add NAME --role admin`")
            && seen.contains("`newsdesk user password NAME`"),
        "{seen}"
    );

    let dir = tempfile::tempdir().unwrap();
    let seen = first_lines_of_serve(dir.path(), &["--demo"], "newsdesk user password admin");
    assert!(
        seen.contains("as \"admin\" with the password ")
            && seen.contains("`newsdesk user password admin`"),
        "{seen}"
    );
    // The next start: an admin exists, no hint.
    let seen = first_lines_of_serve(dir.path(), &[], "newsdesk is serving");
    assert!(seen.contains("newsdesk is serving"), "{seen}");
    assert!(!seen.contains("no admin user yet"), "{seen}");
}

#[tokio::test]
async fn digest_preview_renders_in_a_chosen_language_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("newsdesk.db").display());
    let postgres = crate::helpers::fresh_postgres_url().await;
    if postgres.is_none() {
        crate::helpers::note_postgres_skipped();
    }
    for url in std::iter::once(sqlite).chain(postgres) {
        let vars = [("DATABASE_URL", url.as_str())];
        let demo = newsdesk(dir.path(), &["demo"], &vars);
        assert!(demo.status.success(), "{}", stderr(&demo));
        let preview = |language: &str| {
            newsdesk(
                dir.path(),
                &[
                    "digest",
                    "preview",
                    "--list",
                    "partners",
                    "--period",
                    "2023-W45",
                    "--language",
                    language,
                ],
                &vars,
            )
        };
        let zh = preview("zh");
        assert!(zh.status.success(), "{}", stderr(&zh));
        let out = String::from_utf8_lossy(&zh.stdout);
        assert!(
            out.starts_with("Subject: 合作院校通讯：2023年第45周摘要（11月6日至12日）\n"),
            "{out}"
        );
        assert!(
            out.contains(newsdesk::demo::FINAL_SESSION_TITLE_ZH),
            "{out}"
        );
        let bad = preview("zh_CN");
        assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
        assert!(stderr(&bad).contains("--language: must be a language tag"));
    }
}
