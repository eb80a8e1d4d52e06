//! Black-box tests: the real server on a random port, a real database, real HTTP.

mod admin_e2e;
mod admin_pages;
mod admin_security;
mod api_categories;
mod api_errors;
mod api_items;
mod config;
mod crash;
mod digests;
mod digests_service;
mod feeds;
mod golden;
mod helpers;
mod import;
mod mail;
mod pages;
mod scale;
mod smtp_server;
mod store_contract;
mod subscribers;
