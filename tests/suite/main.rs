//! The end-to-end suite: one test binary, linked once.
//!
//! - `compile_errors`: each compile error at its exact line, column and code.
//! - `corpus`: every malformed runbook and inventory under `tests/corpus/` exits 2 with a located
//!   diagnostic and never panics, under a memory limit.
//! - `hostile`: generated hostile inputs too large to commit (100,000 steps, deep nesting, a
//!   200,000-column line, devices and FIFOs), under the same limit.
//! - `snapshots`: `plan` (text and JSON) and rendered diagnostics, pinned with insta.
//! - `properties`: random runbooks, including cycles and bad references.
//! - `cli`: the binary's commands, exit codes and help.

mod apply;
mod blocks;
mod builtins;
mod cli;
mod compile_errors;
mod corpus;
mod crash;
mod defaults;
mod docs_examples;
mod env_values;
mod environment_exit;
mod events;
mod full_disk;
mod gtm;
mod host_faults;
mod host_lock;
mod hostile;
mod http;
mod iris;
mod lab;
mod module_specs;
mod outage;
mod persist;
mod plan_shape;
mod postgres;
mod postgres_files;
mod postgres_restart;
mod postgres_restart_cli;
mod postgres_roles;
mod postgres_server;
mod postgres_takeover;
mod progress;
mod properties;
mod run_report;
mod runbooks_connections;
mod runbooks_gtm;
mod runbooks_gtm_dr;
mod runbooks_gtm_switchover;
mod runbooks_gtm_upgrade;
mod runbooks_iris;
mod saved_plan;
mod snapshots;
mod ssh_destination;
mod ssh_user_config;
mod state_dir;
mod storage;
mod support;
mod window;
mod wrapper_helpers;
mod wsadmin;
