//! The `http` family: the web tier in front of an application during a planned outage.
//!
//! The IBM Connections recovery procedure (seed `003_86f8010c22e46869.txt`, step 1 and step 7)
//! closes the application to users *at the HTTP server only*: the application server must keep
//! running, because the recovery itself is done with its `wsadmin` commands. So the web server
//! answers everyone with a maintenance page, except an allow-list of addresses (the operator's
//! own and every application server of the deployment), and the same edit is removed at the
//! end. These modules do that on an Apache httpd (IBM HTTP Server is Apache httpd):
//!
//! - `http.maintenance_on` adds a clearly marked block to a configuration file, tests the
//!   configuration with the server's own `-t`, and restarts the server gracefully; a failed test
//!   puts the file back as it was, so nothing is left half-done;
//! - `http.maintenance_off` removes that block, with the same test, restart and rollback;
//! - `http.probe` makes one GET and compares the status, for a gate (`retries:`/`until:`) or a
//!   check that the page is really up (or really closed).
//!
//! Why a block with markers rather than a template of the whole file: the configuration belongs
//! to the site, not to the runbook. The markers let both modules (and a person) find exactly what
//! the runbook added, and their checks compare just that block.

mod maintenance;
mod probe;
mod vendor_lines;

pub use maintenance::{MaintenanceOffModule, MaintenanceOnModule};
pub use probe::ProbeModule;

use crate::module::Module;
use crate::value::Value;

/// Every `http` module, for the registry.
pub fn all() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(MaintenanceOnModule),
        Box::new(MaintenanceOffModule),
        Box::new(ProbeModule),
    ]
}

/// The text of a plain string argument; `None` for a deferred value (known only at run time,
/// so it cannot be validated at plan time) or an absent one.
fn plain(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}
