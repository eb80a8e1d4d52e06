//! newsdesk: news items in categories, served as feeds and pages, with an admin API.
#![forbid(unsafe_code)]

/// The application core: store, mailer, templates, clock and settings.
pub mod app;
/// Other instances' writes (PostgreSQL LISTEN/NOTIFY) passed on to this process's caches and scheduler.
pub mod bridge;
/// Command-line interface: `serve`, `migrate`, `demo`.
pub mod cli;
/// Time as the application sees it; tests set it.
pub mod clock;
/// Every setting, its flag and variable, and the one loader.
pub mod config;
/// Markdown to sanitised HTML.
pub mod content;
/// The delivery engine: the outbox worker that sends digests, and the schedule that builds them.
pub mod delivery;
/// Demo content built from the seed news page.
pub mod demo;
/// Weekly digests: selection and rendering.
pub mod digest;
/// Types that can only hold valid values.
pub mod domain;
/// Pure renderers: items to RSS, Atom, JSON Feed, iCalendar and OPML bytes; the feed cache.
pub mod feeds;
/// Axum routers: public pages and feeds, the admin API, errors and auth.
pub mod http;
/// The site's languages and the words of its pages and feeds in each.
pub mod i18n;
/// Logs on standard error, text or JSON; the server's written in batches.
pub mod logging;
/// Outgoing mail over lettre behind one transport (pooled SMTP or .eml files), list headers, DKIM.
pub mod mail;
/// What the process counts for `/metrics`: a small registry in the Prometheus text format.
pub mod metrics;
/// Admin users' passwords: Argon2id hashes, generated passwords.
pub mod passwords;
/// The rules, once: content, people, lists, subscriptions, digests, import, users.
pub mod services;
/// Building and running the application.
pub mod startup;
/// The only place with SQL: one store over SQLite or PostgreSQL.
pub mod store;
/// Handlebars templates for the HTML pages.
pub mod templates;
