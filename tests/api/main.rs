//! Integration tests: the real server on a random port over a real SQLite
//! file, driven over HTTP; the real binary for the CLI.

mod access;
mod authz;
mod browser;
mod claims;
mod cli;
mod commit;
mod contract;
mod crash;
mod definitions;
mod errors;
mod firewall;
mod history_export;
mod history_search;
mod hostile;
mod hostile_http;
mod hostile_netjob;
mod junet_orders;
mod mail;
mod network;
mod orders;
mod policies;
mod rollback;
mod support;
