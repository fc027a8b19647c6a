//! `iris.status`: the state of an instance as JSON, from `iris qlist INSTANCE`.
//!
//! `iris qlist` is the machine-readable form of `iris list`: one line per instance, fields
//! separated by `^` — name, directory, version, `running, since DATE` or `down, last used DATE`,
//! configuration file, superserver port, web server port, JDBC port, state (`ok`, `warn`,
//! `alert`), product, mirror member type, mirror status, data directory. The module prints them
//! as one JSON object (for `register:`):
//!
//! ```json
//! {"instance":"IRIS","running":true,"status":"running","activity":"since Fri May 13 22:07:02 2016",
//!  "version":"2024.1.0.262.0","directory":"/usr/irissys/","state":"ok","product":"IRIS",
//!  "superserver_port":"1972","web_port":"52773","mirror_member_type":"Failover","mirror_status":"Primary"}
//! ```
//!
//! It only reads: its check runs the same query and exits 0.

use std::sync::LazyLock;

use super::{Target, plain_params};
use crate::args::Args;
use crate::command::Command;
use crate::module::{Module, Operation, RenderError};
use crate::param::ParamSpec;

pub struct StatusModule;

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| plain_params(Vec::new()));

/// The shell function `js TEXT`: TEXT as a JSON string.
pub(super) const JSON_STRING: &str = "js() { printf '\"%s\"' \"$(printf '%s' \"$1\" | sed 's/\\\\/\\\\\\\\/g; s/\"/\\\\\"/g')\"; }\n";

impl Module for StatusModule {
    fn name(&self) -> &'static str {
        "iris.status"
    }

    fn description(&self) -> &'static str {
        "Print an IRIS instance's state from `iris qlist` as JSON"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let target = Target::plain(self.name(), args)?;
        let script = format!(
            "{}{JSON_STRING}{}\
             [ \"$q_running\" = running ] && running=true || running=false\n\
             printf '{{\"instance\":%s,\"running\":%s,\"status\":%s,\"activity\":%s,\"version\":%s,\
             \"directory\":%s,\"state\":%s,\"product\":%s,\"superserver_port\":%s,\"web_port\":%s,\
             \"mirror_member_type\":%s,\"mirror_status\":%s}}\\n' \\\n  \
             \"$(js \"$q_name\")\" \"$running\" \"$(js \"$q_running\")\" \"$(js \"${{q_status#*, }}\")\" \
             \"$(js \"$q_version\")\" \\\n  \"$(js \"$q_dir\")\" \"$(js \"$q_state\")\" \"$(js \"$q_product\")\" \
             \"$(js \"$q_superserver\")\" \"$(js \"$q_web\")\" \\\n  \
             \"$(js \"$q_mirror_type\")\" \"$(js \"$q_mirror_status\")\"",
            target.prelude(1, false),
            target.qlist(),
        );
        Ok(vec![Operation::Remote(super::vendor_lines::summarised(
            Command::probe(script),
        ))])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Target::qlist_check(self.name(), args)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::iris::testing::{render, s};

    /// Runs the rendered script with a fake `iris` that prints `qlist`.
    pub(crate) fn run_with_qlist(module: &dyn Module, qlist: &str) -> (i32, String, String) {
        let dir = std::env::temp_dir().join(format!(
            "runbook-iris-qlist-{}-{}",
            std::process::id(),
            module.name()
        ));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let fake = dir.join("iris");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\n[ \"$1\" = qlist ] || exit 9\nprintf '%s\\n' '{qlist}'\n"),
        )
        .expect("write");
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .expect("chmod");
        let cmd = render(
            module,
            &[
                ("instance", s("INSTTEST")),
                ("iris", s(fake.to_str().expect("utf-8"))),
            ],
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd.script)
            .output()
            .expect("sh");
        let _ = std::fs::remove_dir_all(&dir);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn parses_the_vendor_qlist_line_into_json() {
        // A qlist line of a mirrored instance, as `iris qlist` prints it.
        let (code, stdout, stderr) = run_with_qlist(
            &StatusModule,
            "INSTTEST^/ensemble/instances/insttest/^2015.2.2.805.0.16216^running, since Fri May 13 22:07:02 2016^cache.cpf^56772^57772^62972^ok^^Failover^Primary^/mgr/config",
        );
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
        assert_eq!(
            json,
            serde_json::json!({
                "instance": "INSTTEST", "running": true, "status": "running",
                "activity": "since Fri May 13 22:07:02 2016", "version": "2015.2.2.805.0.16216",
                "directory": "/ensemble/instances/insttest/", "state": "ok", "product": "",
                "superserver_port": "56772", "web_port": "57772",
                "mirror_member_type": "Failover", "mirror_status": "Primary"
            })
        );
        let (code, stdout, _) = run_with_qlist(
            &StatusModule,
            "INSTTEST^/ensemble/instances/insttest/^2012.2.3.903.2.12515^down, last used Thu Sep 15 18:58:30 2016^cache.cpf^56772^57772^62972",
        );
        assert_eq!(code, 0);
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(json["running"], false);
        assert_eq!(json["status"], "down");
        assert_eq!(json["activity"], "last used Thu Sep 15 18:58:30 2016");
        assert_eq!(json["mirror_status"], "");
        let (code, stdout, stderr) = run_with_qlist(&StatusModule, "");
        assert_eq!((code, stdout.as_str()), (1, ""));
        assert_eq!(
            stderr,
            "iris.status: iris qlist knows no instance INSTTEST\n"
        );
    }
}
