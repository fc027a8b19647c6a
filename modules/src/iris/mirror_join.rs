//! `iris.mirror_join`: join this instance to an existing mirror, as the second failover member
//! (`SYS.Mirror.JoinMirrorAsFailoverMember`) or as an async member
//! (`SYS.Mirror.JoinMirrorAsAsyncMember`).
//!
//! Seed 000, section 4.9 ("Configure instance B as the second failover member"). The arguments
//! name the mirror, this member, and the primary: its instance name and the address and port of
//! its ISCAgent. The query is the mirror name (`$SYSTEM.Mirror.MirrorName()`) and the member type
//! from `iris qlist`; an instance that already belongs to a mirror any other way is refused.
//! With SSL/TLS, authorize the new member on the primary as the vendor's documentation says
//! (Management Portal), before or after this step.

use std::sync::LazyLock;

use super::mirror_create::{info_lines, membership_query};
use super::{Operate, Plan, Target, os_str, report, required_text, session_params, text};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct MirrorJoin;

const ASYNC_TYPES: [(&str, u8, &str); 3] = [
    ("disaster_recovery", 0, "Disaster Recovery"),
    ("read_only_reporting", 1, "Read-Only Reporting"),
    ("read_write_reporting", 2, "Read-Write Reporting"),
];

crate::params! {
    struct Params {

        mirror_name: ParamSpec::required(ParamType::String, "The mirror to join"),
        agent_address: ParamSpec::required(ParamType::String,
            "Address of the primary's ISCAgent",
        ),
        agent_port: ParamSpec::optional(ParamType::Int,
            "Port of the primary's ISCAgent",
        )
        .with_default(Value::Int(2188)),
        primary_instance: ParamSpec::optional(ParamType::String,
            "The primary's instance name (default: the same as `instance`)",
        ),
        system_name: ParamSpec::optional(ParamType::String,
            "This member's name in the mirror (default: the vendor's default system name)",
        ),
        member: ParamSpec::optional(ParamType::Enum(&["failover", "async"]),
            "Join as the second failover member (default) or as an async member",
        )
        .with_default(Value::Str("failover".into())),
        async_type: ParamSpec::optional(ParamType::Enum(&[
                "disaster_recovery",
                "read_only_reporting",
                "read_write_reporting",
            ]),
            "The async member type (default disaster_recovery)",
        )
        .with_default(Value::Str("disaster_recovery".into())),
        mirror_info: ParamSpec::optional(ParamType::Map(Box::new(ParamType::String)),
            "MirrorInfo properties of the join call, by name",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

impl Operate for MirrorJoin {
    fn name(&self) -> &'static str {
        "iris.mirror_join"
    }

    fn description(&self) -> &'static str {
        "Join a mirror as failover or async member (SYS.Mirror.JoinMirrorAs...Member)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let mirror = required_text(p.mirror_name)?;
        let address = required_text(p.agent_address)?;
        let port = p.agent_port.int().unwrap_or(2188);
        if !(1..=65_535).contains(&port) {
            return Err(RenderError::new(
                p.agent_port.name(),
                format!("expected a TCP port from 1 to 65535, found {port}"),
            ));
        }
        let primary = text(p.primary_instance)?.unwrap_or_else(|| target.instance.clone());
        let system = text(p.system_name)?.map_or_else(String::new, |s| os_str(&s));
        let failover = p.member.str().as_deref() != Some("async");
        let async_type = p.async_type.str().unwrap_or_default();
        let (code, member_type) = if failover {
            (None, "Failover")
        } else {
            let (_, code, label) = ASYNC_TYPES
                .iter()
                .find(|(name, _, _)| *name == async_type)
                .copied()
                .unwrap_or(ASYNC_TYPES[0]);
            (Some(code), label)
        };
        let mut lines = info_lines(&[], p.mirror_info)?;
        let common = format!(
            "{},{system},{},{},{port}",
            os_str(&mirror),
            os_str(&primary),
            os_str(&address)
        );
        let method = match code {
            None => {
                lines.push(format!(
                    "set sc=##class(SYS.Mirror).JoinMirrorAsFailoverMember({common},.info)"
                ));
                "SYS.Mirror.JoinMirrorAsFailoverMember"
            }
            Some(code) => {
                lines.push(format!(
                    "set sc=##class(SYS.Mirror).JoinMirrorAsAsyncMember({common},{code},.info)"
                ));
                "SYS.Mirror.JoinMirrorAsAsyncMember"
            }
        };
        lines.push(report("sc"));
        let act = format!(
            "[ -z \"$v$q_mirror_type\" ] || fail \"the instance is already a mirror member: \
             mirror '$v', $q_mirror_type $q_mirror_status\"\n{}vendor {method} \"$out\"\n",
            target.run("%SYS", &lines)
        );
        Ok(Plan {
            query: membership_query(&target),
            in_state: format!(
                "[ \"$v\" = {} ] && [ \"$q_mirror_type\" = {} ]",
                quote(&mirror),
                quote(member_type)
            ),
            act,
            session: true,
            artifacts: Vec::new(),
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::Iris;
    use crate::iris::testing::{objectscript, render, render_error, s};

    #[test]
    fn joins_as_failover_or_async_member() {
        let base = [
            ("instance", s("HSPC")),
            ("mirror_name", s("HSMIRROR")),
            ("agent_address", s("10.1.1.10")),
            ("system_name", s("HSPC_B")),
        ];
        let cmd = render(&Iris(MirrorJoin), &base);
        assert_eq!(
            objectscript(&cmd.script)[1][0],
            "set sc=##class(SYS.Mirror).JoinMirrorAsFailoverMember(\"HSMIRROR\",\"HSPC_B\",\"HSPC\",\"10.1.1.10\",2188,.info)"
        );
        assert!(
            cmd.script
                .contains("if [ \"$v\" = HSMIRROR ] && [ \"$q_mirror_type\" = Failover ]; then")
        );
        assert!(
            cmd.script
                .ends_with("vendor SYS.Mirror.JoinMirrorAsFailoverMember \"$out\"")
        );

        let mut raw = base.to_vec();
        raw.extend([
            ("member", s("async")),
            ("async_type", s("read_only_reporting")),
            ("primary_instance", s("HSPCA")),
            ("agent_port", Value::Int(2190)),
        ]);
        let cmd = render(&Iris(MirrorJoin), &raw);
        assert_eq!(
            objectscript(&cmd.script)[1][0],
            "set sc=##class(SYS.Mirror).JoinMirrorAsAsyncMember(\"HSMIRROR\",\"HSPC_B\",\"HSPCA\",\"10.1.1.10\",2190,1,.info)"
        );
        assert!(
            cmd.script
                .contains("[ \"$q_mirror_type\" = 'Read-Only Reporting' ]")
        );

        let mut raw = base.to_vec();
        raw.push(("agent_port", Value::Int(0)));
        assert_eq!(
            render_error(&Iris(MirrorJoin), &raw).arg,
            Some("agent_port")
        );
    }
}
