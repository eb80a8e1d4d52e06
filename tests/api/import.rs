//! CSV import and export, through the API and the command line.

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn import(app: &TestApp, query: &str, csv: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    let r = app
        .admin(Method::POST, &format!("/api/v1/subscribers/import?{query}"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn total(app: &TestApp, query: &str) -> u64 {
    let v: Value = app
        .admin(Method::GET, &format!("/api/v1/subscribers?{query}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["total"].as_u64().unwrap()
}

const GOOD: &str = "email,name,partner,language,department\n\
ana@example.org,Ana Silva,,en,Library\n\
li.na@zjtie-cn.example.edu,Li Na,Zhejiang Technical Institute of Economics,,International Office\n\
bo@example.org,\"Bo, the \"\"tester\"\"\",temasek polytechnic of singapore,en,\n";

#[tokio::test]
async fn good_rows_are_applied_and_bad_rows_reported_with_their_lines() {
    let app = spawn_app().await;
    app.load_demo().await;
    let csv = format!(
        "{GOOD}\
not-an-address,Nobody,,en,\n\
eve@example.org,Eve,Unknown College,en,\n\
ANA@example.org,Ana again,,en,\n\
zed@example.org,Zed,,english,\n\
short@example.org,Short\n"
    );
    let (status, report) = import(&app, "list=partners", csv).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"], 8);
    assert_eq!(report["created"], 3);
    assert_eq!(report["added_to_list"], 3);
    assert_eq!(report["bad_rows"], 5);
    assert_eq!(report["applied"], true);
    let bad: Vec<(u64, String)> = report["bad_row_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["line"].as_u64().unwrap(),
                b["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        bad.iter().map(|b| b.0).collect::<Vec<_>>(),
        [5, 6, 7, 8, 9],
        "{bad:?}"
    );
    assert!(
        bad[0].1.starts_with("email must be an address"),
        "{}",
        bad[0].1
    );
    assert!(
        bad[1]
            .1
            .contains("partner \"Unknown College\" is not known"),
        "{}",
        bad[1].1
    );
    assert!(
        bad[2].1.contains("appears earlier in the file"),
        "{}",
        bad[2].1
    );
    assert!(bad[3].1.starts_with("language"), "{}", bad[3].1);
    assert!(
        bad[4].1.contains("has 2 fields, the header has 5"),
        "{}",
        bad[4].1
    );

    // Imported contacts on a double opt-in list wait for their confirmation.
    let v: Value = app
        .admin(Method::GET, "/api/v1/subscribers?q=li.na")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let li = &v["subscribers"][0];
    assert_eq!(li["status"], "pending");
    assert_eq!(li["joined_via"], "import");
    assert_eq!(
        li["language"], "zh",
        "the partner's language when the row names none"
    );
    assert_eq!(li["partner"], "Zhejiang Technical Institute of Economics");
    assert_eq!(
        li["attributes"],
        json!({"department": "International Office"})
    );
    let v: Value = app
        .admin(Method::GET, "/api/v1/subscribers?q=bo@")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["subscribers"][0]["name"], "Bo, the \"tester\"");
    assert_eq!(total(&app, "list=partners&status=pending").await, 3);
}

#[tokio::test]
async fn importing_the_same_file_again_changes_nothing() {
    let app = spawn_app().await;
    app.load_demo().await;
    let (_, first) = import(&app, "list=partners", GOOD).await;
    assert_eq!(first["created"], 3);
    let (_, second) = import(&app, "list=partners", GOOD).await;
    assert_eq!(
        (
            second["created"].as_u64(),
            second["updated"].as_u64(),
            second["unchanged"].as_u64(),
            second["added_to_list"].as_u64()
        ),
        (Some(0), Some(0), Some(3), Some(0)),
        "{second}"
    );
    // A changed name is an update, nothing else.
    let (_, third) = import(
        &app,
        "list=partners",
        GOOD.replace("Ana Silva", "Ana M. Silva"),
    )
    .await;
    assert_eq!(
        (third["updated"].as_u64(), third["unchanged"].as_u64()),
        (Some(1), Some(2))
    );
}

#[tokio::test]
async fn an_import_never_resubscribes_somebody_who_left() {
    let app = spawn_app().await;
    app.load_demo().await;
    import(
        &app,
        "list=partners&consent_source=partner%20agreement",
        GOOD,
    )
    .await;
    let v: Value = app
        .admin(Method::GET, "/api/v1/subscribers?q=ana@")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["subscribers"][0]["id"].as_i64().unwrap();
    assert_eq!(
        v["subscribers"][0]["status"], "confirmed",
        "stated consent confirms"
    );
    app.admin(
        Method::DELETE,
        &format!("/api/v1/lists/partners/members/{id}"),
    )
    .send()
    .await
    .unwrap();
    import(
        &app,
        "list=partners&consent_source=partner%20agreement",
        GOOD,
    )
    .await;
    let detail: Value = app
        .admin(Method::GET, &format!("/api/v1/subscribers/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["memberships"][0]["status"], "unsubscribed");
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing() {
    let app = spawn_app().await;
    app.load_demo().await;
    let (status, report) = import(&app, "list=partners&dry_run=true", GOOD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (report["created"].as_u64(), report["applied"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(total(&app, "").await, 8);
}

#[tokio::test]
async fn all_or_nothing_applies_nothing_when_one_row_is_bad() {
    let app = spawn_app().await;
    app.load_demo().await;
    let (_, report) = import(
        &app,
        "list=partners&mode=all_or_nothing",
        format!("{GOOD}broken@,x,,en,\n"),
    )
    .await;
    assert_eq!(
        (report["bad_rows"].as_u64(), report["applied"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(total(&app, "").await, 8, "nothing half-written");
    let (_, report) = import(&app, "list=partners&mode=all_or_nothing", GOOD).await;
    assert_eq!(report["applied"], true);
    assert_eq!(total(&app, "").await, 11);
}

#[tokio::test]
async fn broken_quoting_and_wrong_encodings_are_reported_not_stored() {
    let app = spawn_app().await;
    app.load_demo().await;
    let mut latin1 = b"email,name\nok@example.org,Ok\nfr@example.org,Fran".to_vec();
    latin1.push(0xE7); // 'ç' in Latin-1: not UTF-8
    latin1.extend_from_slice(b"ois\n");
    let (_, report) = import(&app, "", latin1).await;
    assert_eq!(
        (report["created"].as_u64(), report["bad_rows"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(report["bad_row_details"][0]["line"], 3);
    assert!(
        report["bad_row_details"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );

    let broken = "email,name\nq1@example.org,\"never closed\nq2@example.org,Two\n";
    let (_, report) = import(&app, "mode=all_or_nothing", broken).await;
    assert_eq!(report["applied"], false, "{report}");
    assert!(report["bad_rows"].as_u64().unwrap() >= 1, "{report}");

    let (status, problem) = import(&app, "", "name,language\nx,en\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["errors"][0]["field"], "file");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no \"email\" column")
    );

    let r = app
        .admin(Method::POST, "/api/v1/subscribers/import")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, problem) = import(&app, "mode=sometimes&dry_run=maybe", GOOD).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["mode", "dry_run"]);
    let (status, _) = import(&app, "list=nope", GOOD).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413() {
    let app = spawn_app_with(Db::Sqlite, |s| s.max_import_bytes = 2048)
        .await
        .unwrap();
    let big = format!("email\n{}", "someone@example.org\n".repeat(200));
    let (status, problem) = import(&app, "", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(total(&app, "").await, 0);
}

#[tokio::test]
async fn an_export_imports_back_unchanged() {
    let app = spawn_app().await;
    app.load_demo().await;
    import(&app, "list=partners", GOOD).await;
    let r = app
        .admin(Method::GET, "/api/v1/subscribers/export?list=partners")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("email,name,partner,language,status,department")
    );
    assert_eq!(csv.lines().count(), 12, "{csv}");
    assert!(csv.contains("li.na@zjtie-cn.example.edu,Li Na,Zhejiang Technical Institute of Economics,zh,pending,International Office"));
    let (_, report) = import(&app, "list=partners", csv).await;
    assert_eq!(
        (
            report["unchanged"].as_u64(),
            report["created"].as_u64(),
            report["updated"].as_u64()
        ),
        (Some(11), Some(0), Some(0))
    );
}

#[tokio::test]
async fn the_command_line_imports_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .args(args)
            .env("DATABASE_URL", &db)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(run(&["demo"]).status.success());
    let file = dir.path().join("contacts.csv");
    std::fs::write(&file, format!("{GOOD}bad,row,,en,\n")).unwrap();
    let path = file.to_str().unwrap();
    let out = run(&[
        "subscribers",
        "import",
        path,
        "--list",
        "partners",
        "--dry-run",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4 rows") && stdout.contains("3 created") && stdout.contains("dry run"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 5: bad email"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "subscribers",
        "import",
        path,
        "--list",
        "partners",
        "--all-or-nothing",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "all or nothing with a bad row fails"
    );
    let out = run(&["subscribers", "import", path, "--list", "partners"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 created"));
    let out = run(&["subscribers", "export", "--list", "partners"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 12);
    let out = run(&["subscribers", "import", path, "--list", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no list \"nope\""));
}
