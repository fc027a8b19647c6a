//! `iris.mirror_status`: an instance's mirror membership as JSON, from `iris qlist INSTANCE`.
//!
//! The mirror fields of the `iris qlist` line are the member type (`Failover`, `Disaster
//! Recovery`, `Read-Only Reporting`, `Read-Write Reporting`, empty when not a member) and the
//! member status (`Primary`, `Backup`, `Connected`, `Transition`, ...; empty while the instance
//! is down). Seed 000 sections 4.9 and 4.22 step 2 ("confirm that it is now the primary by
//! opening the Mirror Monitor"). It prints:
//!
//! ```json
//! {"instance":"IRIS","running":true,"member":true,"member_type":"Failover","status":"Primary",
//!  "primary":true,"backup":false}
//! ```
//!
//! Journal latency is not part of `iris qlist` and is not reported. It only reads: its check
//! runs the same query and exits 0.

use std::sync::LazyLock;

use super::status::JSON_STRING;
use super::{Target, plain_params};
use crate::args::Args;
use crate::command::Command;
use crate::module::{Module, Operation, RenderError};
use crate::param::ParamSpec;

pub struct MirrorStatusModule;

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| plain_params(Vec::new()));

impl Module for MirrorStatusModule {
    fn name(&self) -> &'static str {
        "iris.mirror_status"
    }

    fn description(&self) -> &'static str {
        "Print an IRIS instance's mirror member type and status (`iris qlist`) as JSON"
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
             b() {{ if [ \"$1\" = \"$2\" ]; then printf true; else printf false; fi; }}\n\
             [ -n \"$q_mirror_type\" ] && member=true || member=false\n\
             printf '{{\"instance\":%s,\"running\":%s,\"member\":%s,\"member_type\":%s,\"status\":%s,\
             \"primary\":%s,\"backup\":%s}}\\n' \\\n  \
             \"$(js \"$q_name\")\" \"$(b \"$q_running\" running)\" \"$member\" \"$(js \"$q_mirror_type\")\" \
             \"$(js \"$q_mirror_status\")\" \\\n  \
             \"$(b \"$q_mirror_status\" Primary)\" \"$(b \"$q_mirror_status\" Backup)\"",
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
mod tests {
    use super::*;
    use crate::iris::status::tests::run_with_qlist;

    #[test]
    fn reads_member_type_and_status() {
        let (code, stdout, stderr) = run_with_qlist(
            &MirrorStatusModule,
            "INSTTEST^/ensemble/instances/insttest/^2015.2.2.805.0.16216^running, since Fri May 13 22:07:02 2016^cache.cpf^56772^57772^62972^ok^^Failover^Primary^/mgr/config",
        );
        assert_eq!(code, 0, "{stderr}");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({"instance": "INSTTEST", "running": true, "member": true,
                "member_type": "Failover", "status": "Primary", "primary": true, "backup": false})
        );
        let (_, stdout, _) = run_with_qlist(
            &MirrorStatusModule,
            "PRD^/iris/^2023.1^running, since Mon Jan 1 2024^iris.cpf^1972^52773^0^ok^IRIS^Disaster Recovery^Connected^/iris/",
        );
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(json["member_type"], "Disaster Recovery");
        assert_eq!(json["status"], "Connected");
        assert_eq!(json["primary"], false);
        let (_, stdout, _) = run_with_qlist(
            &MirrorStatusModule,
            "INSTTEST^/ensemble/instances/insttest/^2018.1.1.643.0^running, since Fri May 13 22:07:02 2016^iris.cpf^56772^57772^62972^ok^IRIS^^^/mgr/config",
        );
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(json["member"], false);
    }
}
