//! The `wsadmin` family: the IBM Connections administration commands of the Communities
//! recovery after a database restore (seed `003_86f8010c22e46869.txt`, steps 2 to 6).
//!
//! Every module runs one wsadmin session (a JVM start takes long, so a module that works on
//! several features does them all in one session) from the Deployment Manager profile's `bin`
//! directory, as the Connections documentation requires for its `execfile("...Admin.py")`
//! scripts:
//!
//! ```sh
//! cd /opt/IBM/WebSphere/AppServer/profiles/Dmgr01/bin
//! /opt/IBM/.../bin/wsadmin.sh -lang jython -conntype SOAP -host H -port P -p "$work/login.properties" -f "$work/step.py"
//! ```
//!
//! - The Jython is generated here, every value as a Jython string literal ([`py_str`]), written
//!   to a private temporary file with `printf` (through [`quote`]), and ends by printing
//!   [`DONE`]: wsadmin stops a `-f` script at the first exception, so a missing marker means a
//!   command failed even when wsadmin exits 0.
//! - Credentials never reach a command line: the user and the password (a secret parameter the
//!   step passes in its `env:` as `WSADMIN_PASSWORD`) are written to a mode-0600 properties file
//!   (`com.ibm.SOAP.loginUserid` / `loginPassword`, or the `CORBA` keys for RMI) passed with
//!   `-p`, and removed with the work directory when the command ends.
//! - wsadmin's own output goes to standard error; standard output carries one JSON object.
//!
//! The features of the seed and their names in the commands:
//!
//! | feature | remoteAppDefId | admin script | service |
//! | --- | --- | --- | --- |
//! | activities | Activities | activitiesAdmin.py | ActivitiesService |
//! | blogs | Blog | blogsAdmin.py | BlogsAdminService |
//! | files | Files | filesAdmin.py | FilesLibraryService |
//! | wikis | Wiki | wikisAdmin.py | WikisLibraryService |

mod clear_queue;
mod export;
mod retry_task;
mod sync_report;
mod vendor_lines;

use std::fmt::Write as _;

pub use clear_queue::ClearQueueModule;
pub use export::ExportModule;
pub use retry_task::{PauseRetryTaskModule, ResumeRetryTaskModule};
pub use sync_report::SyncReportModule;

use crate::arg::Arg;
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{Module, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// Every `wsadmin` module, for the registry.
pub fn all() -> Vec<Box<dyn Module>> {
    vec![
        Box::new(PauseRetryTaskModule),
        Box::new(ResumeRetryTaskModule),
        Box::new(ClearQueueModule),
        Box::new(ExportModule),
        Box::new(SyncReportModule),
    ]
}

/// The line the generated Jython prints last; its absence means a command failed.
pub const DONE: &str = "runbook-wsadmin: done";

/// The default wsadmin: the Deployment Manager profile's, as the Connections docs place it.
pub const DEFAULT_WSADMIN: &str = "/opt/IBM/WebSphere/AppServer/profiles/Dmgr01/bin/wsadmin.sh";

/// The environment variable the password is read from; the step sets it with `env:` from a
/// secret parameter (secrets reach a host only through a step's environment).
pub const PASSWORD_ENV: &str = "WSADMIN_PASSWORD";

/// The features of the seed (steps 3 and 4).
pub const FEATURES: &[&str] = &["activities", "blogs", "files", "wikis"];

/// What the commands call one feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    /// The remoteAppDefId of step 3.
    pub remote_app: &'static str,
    /// The admin script that defines the service.
    pub script: &'static str,
    /// The service of step 4.
    pub service: &'static str,
    /// The export file name of the seed's examples (`activitiesOutput.xml`).
    pub export_file: &'static str,
}

const FEATURE_TABLE: [Feature; 4] = [
    Feature {
        name: "activities",
        remote_app: "Activities",
        script: "activitiesAdmin.py",
        service: "ActivitiesService",
        export_file: "activitiesOutput.xml",
    },
    Feature {
        name: "blogs",
        remote_app: "Blog",
        script: "blogsAdmin.py",
        service: "BlogsAdminService",
        export_file: "blogsOutput.xml",
    },
    Feature {
        name: "files",
        remote_app: "Files",
        script: "filesAdmin.py",
        service: "FilesLibraryService",
        export_file: "filesOutput.xml",
    },
    Feature {
        name: "wikis",
        remote_app: "Wiki",
        script: "wikisAdmin.py",
        service: "WikisLibraryService",
        export_file: "wikisOutput.xml",
    },
];

/// The features a `features` argument names, in the order given, without repeats.
fn features(arg: Arg<'_>) -> Result<Vec<Feature>, RenderError> {
    let items = arg.list().unwrap_or_default();
    if items.is_empty() {
        return Err(RenderError::new(arg.name(), "name at least one feature"));
    }
    let mut out: Vec<Feature> = Vec::new();
    for item in items {
        let feature = FEATURE_TABLE
            .iter()
            .find(|f| item.as_str() == Some(f.name))
            .ok_or_else(|| {
                RenderError::new(
                    arg.name(),
                    format!("unknown feature `{item}`: one of {}", FEATURES.join(", ")),
                )
            })?;
        if out.contains(feature) {
            return Err(RenderError::new(
                arg.name(),
                format!("`{}` is listed twice", feature.name),
            ));
        }
        out.push(*feature);
    }
    Ok(out)
}

/// The `features` parameter.
fn features_param(name: &'static str, description: &'static str) -> ParamSpec {
    ParamSpec::required(
        name,
        ParamType::List(Box::new(ParamType::Enum(FEATURES))),
        description,
    )
}

crate::params! {
    /// The connection parameters every wsadmin module takes.
    struct ConnectionParams {

        wsadmin: ParamSpec::optional(ParamType::Path,
            "Absolute path of wsadmin.sh in the Deployment Manager profile's bin directory",
        )
        .with_default(Value::Str(DEFAULT_WSADMIN.into())),
        conntype: ParamSpec::optional(ParamType::Enum(&["SOAP", "RMI"]), "Connector")
            .with_default(Value::Str("SOAP".into())),
        host: ParamSpec::optional(ParamType::String,
            "Deployment Manager host (default: wsadmin's own)",
        ),
        port: ParamSpec::optional(ParamType::Int,
            "Deployment Manager SOAP or RMI port (default: wsadmin's own)",
        ),
        user: ParamSpec::optional(ParamType::String,
            "Administrator user; the password comes from the step's `env: {WSADMIN_PASSWORD: ...}`",
        ),
        server: ParamSpec::optional(ParamType::Int,
            "The answer to the admin scripts' \"which server\" prompt, when there is one",
        ),
    }
}

fn connection_params() -> Vec<ParamSpec> {
    ConnectionParams::specs()
}

/// Jython string literal for `text`: double-quoted, with `\`, `"` and control characters
/// escaped, so no value can end the string or the line.
pub fn py_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c) & 0xff);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of a plain argument, or the placeholder of a deferred one.
fn text(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An absolute path argument (deferred values pass).
fn abs_path(arg: Arg<'_>) -> Result<String, RenderError> {
    let name = arg.name();
    let value = arg
        .get()
        .filter(|v| **v != Value::Null)
        .ok_or_else(|| RenderError::new(name, "is required"))?;
    if let Value::Secret(_) = value {
        return Err(RenderError::new(name, "cannot be a secret"));
    }
    let path = text(value);
    if matches!(value, Value::Str(_)) && !path.starts_with('/') {
        return Err(RenderError::new(
            name,
            format!("expected an absolute path, found `{path}`"),
        ));
    }
    Ok(path)
}

/// One wsadmin session: the connection, checked, and the command that runs a Jython body.
struct Session {
    module: &'static str,
    wsadmin: String,
    conntype: String,
    host: Option<String>,
    port: Option<i64>,
    user: Option<String>,
    server: Option<i64>,
}

impl Session {
    fn new(module: &'static str, args: &Args) -> Result<Self, RenderError> {
        let p = ConnectionParams::read(args);
        let wsadmin = abs_path(p.wsadmin)?;
        if let Some(port) = p.port.int().filter(|p| !(1..=65_535).contains(p)) {
            return Err(RenderError::new(
                p.port.name(),
                format!("expected a TCP port from 1 to 65535, found {port}"),
            ));
        }
        for arg in [p.host, p.user] {
            if let Some(Value::Secret(_)) = arg.get() {
                return Err(RenderError::new(arg.name(), "cannot be a secret"));
            }
        }
        let host = p.host.get().filter(|v| **v != Value::Null).map(text);
        if let Some(h) = &host
            && (h.is_empty() || h.starts_with('-') || h.contains(char::is_whitespace))
        {
            return Err(RenderError::new(
                p.host.name(),
                format!("expected a host name or address, found `{h}`"),
            ));
        }
        let user = p.user.get().filter(|v| **v != Value::Null).map(text);
        if let Some(u) = &user
            && u.contains(['\n', '\r'])
        {
            return Err(RenderError::new(p.user.name(), "cannot span lines"));
        }
        Ok(Self {
            module,
            wsadmin,
            conntype: p.conntype.str().unwrap_or_else(|| "SOAP".into()),
            host,
            port: p.port.int(),
            user,
            server: p.server.int(),
        })
    }

    /// The script that runs `before` (preparation, in the profile's bin directory), `jython`
    /// (which must end by printing [`DONE`]) in one session, then `after` (checks of the
    /// produced files), then prints `json`.
    fn command(
        &self,
        before: &str,
        jython: &str,
        after: &str,
        json: &serde_json::Value,
    ) -> Command {
        let m = quote(self.module);
        let bin = self
            .wsadmin
            .rsplit_once('/')
            .map_or("/", |(dir, _)| if dir.is_empty() { "/" } else { dir });
        let mut s = format!(
            "cd {bin} || exit 1\n\
             {before}\
             work=$(mktemp -d) || exit 1\n\
             trap 'rm -rf \"$work\"' EXIT\n\
             trap 'exit 1' HUP INT TERM\n\
             printf '%s\\n' {jython} > \"$work/step.py\" || exit 1\n",
            bin = quote(bin),
            jython = quote(jython),
        );
        let mut argv = format!(
            "{} -lang jython -conntype {}",
            quote(&self.wsadmin),
            quote(&self.conntype)
        );
        if let Some(host) = &self.host {
            let _ = write!(argv, " -host {}", quote(host));
        }
        if let Some(port) = self.port {
            let _ = write!(argv, " -port {port}");
        }
        if let Some(user) = &self.user {
            let prefix = if self.conntype == "RMI" {
                "com.ibm.CORBA"
            } else {
                "com.ibm.SOAP"
            };
            let _ = writeln!(
                s,
                "[ -n \"${{{PASSWORD_ENV}:-}}\" ] || {{ printf '%s: set {PASSWORD_ENV} in the step'\\''s \
                 env: (from a secret parameter)\\n' {m} >&2; exit 1; }}\n\
                 {{ printf '{prefix}.loginUserid=%s\\n' {user}; printf '{prefix}.loginPassword='; \
                 printf '%s' \"${PASSWORD_ENV}\" | sed 's/\\\\/\\\\\\\\/g'; echo; }} > \
                 \"$work/login.properties\" || exit 1",
                user = quote(&properties_escape(user)),
            );
            argv.push_str(" -p \"$work/login.properties\"");
        }
        argv.push_str(" -f \"$work/step.py\"");
        let input = match self.server {
            Some(n) => format!("printf '%s\\n' {n} {n} {n} {n} {n} {n} {n} {n} | "),
            None => String::new(),
        };
        let stdin = if self.server.is_some() {
            ""
        } else {
            " < /dev/null"
        };
        let _ = write!(
            s,
            "{input}{argv}{stdin} > \"$work/out\" 2>&1\n\
             rc=$?\n\
             cat \"$work/out\" >&2\n\
             if [ \"$rc\" -ne 0 ] || ! grep -qxF {done} \"$work/out\"; then\n  \
             why=$(grep -m 1 -E '[A-Z]{{4}}[0-9]{{4}}E|Exception|Error' \"$work/out\")\n  \
             printf '%s: wsadmin failed (exit %s): %s\\n' {m} \"$rc\" \"${{why:-the script did not \
             complete}}\" >&2\n  exit 1\nfi\n",
            done = quote(DONE),
        );
        s.push_str(after);
        let _ = write!(s, "printf '%s\\n' {}", quote(&json.to_string()));
        vendor_lines::summarised(Command::new(s))
    }
}

/// A value for a Java properties file: `\` doubled, so it reads back as written.
fn properties_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
}

/// A Jython body: the statements, then the [`DONE`] line.
fn jython(lines: &[String]) -> String {
    let mut body = lines.join("\n");
    let _ = write!(body, "\nprint {}", py_str(DONE));
    body
}

#[cfg(test)]
pub(crate) mod testing {
    //! Running the rendered commands against the recording stand-in.

    use std::path::{Path, PathBuf};

    use crate::generic::testing::TempDir;

    /// `tests/standins/wsadmin`, copied to `DIR/profiles/Dmgr01/bin/wsadmin.sh`.
    pub fn install(dir: &TempDir) -> PathBuf {
        let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/standins/wsadmin");
        let bin = dir.join("profiles/Dmgr01/bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        let path = bin.join("wsadmin.sh");
        std::fs::copy(standin, &path).expect("copy the stand-in");
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn the_family_is_registered() {
        let names: Vec<_> = Registry::builtin()
            .names()
            .filter(|n| n.starts_with("wsadmin."))
            .collect();
        assert_eq!(
            names,
            [
                "wsadmin.clear_event_queue",
                "wsadmin.export_synced_resources",
                "wsadmin.pause_retry_task",
                "wsadmin.resume_retry_task",
                "wsadmin.sync_report",
            ]
        );
        let http: Vec<_> = Registry::builtin()
            .names()
            .filter(|n| n.starts_with("http."))
            .collect();
        assert_eq!(
            http,
            ["http.maintenance_off", "http.maintenance_on", "http.probe"]
        );
    }

    #[test]
    fn jython_strings_cannot_be_escaped() {
        assert_eq!(py_str("/tmp/a b.xml"), "\"/tmp/a b.xml\"");
        assert_eq!(
            py_str("x\")\nimport os\r\t\\\u{1}"),
            "\"x\\\")\\nimport os\\r\\t\\\\\\x01\""
        );
    }
}
