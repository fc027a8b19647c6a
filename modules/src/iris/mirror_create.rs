//! `iris.mirror_create`: create a mirror on the instance that becomes the first failover member
//! (the primary), with `SYS.Mirror.CreateNewMirrorSet(MirrorName, SystemName, .MirrorInfo)`.
//!
//! Seed 000, section 4.9 ("Configure instance A as the first failover member"; the settings
//! table: mirror name, require SSL/TLS, arbiter, virtual IP) and chapter 4's advice to "use the
//! API methods in the SYS.Mirror class to create the mirror". The query is the mirror name
//! (`$SYSTEM.Mirror.MirrorName()`) and the member status from `iris qlist`: the instance is in
//! state when it is the `Primary` of this mirror. An instance that already belongs to a mirror
//! any other way is refused, quoting what it is.

use std::sync::LazyLock;

use super::{
    Operate, Plan, Target, os_str, report, required_text, session_params, text, value_line,
};
use crate::arg::Arg;
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct MirrorCreate;

crate::params! {
    struct Params {

        mirror_name: ParamSpec::required(ParamType::String,
            "The mirror's name, 1 to 15 letters and digits",
        ),
        system_name: ParamSpec::optional(ParamType::String,
            "This member's name in the mirror (default: the vendor's default system name)",
        ),
        use_ssl: ParamSpec::optional(ParamType::Bool,
            "MirrorInfo `UseSSL`: require SSL/TLS between members (default true, as the seed advises)",
        )
        .with_default(Value::Bool(true)),
        arbiter: ParamSpec::optional(ParamType::String,
            "MirrorInfo `ArbiterNode`: the arbiter as `ADDRESS|PORT` (ISCAgent port, 2188 by default)",
        ),
        virtual_address: ParamSpec::optional(ParamType::String,
            "MirrorInfo `VirtualAddress`: the mirror VIP as `ADDRESS/CIDR,INTERFACE`",
        ),
        mirror_info: ParamSpec::optional(ParamType::Map(Box::new(ParamType::String)),
            "Other MirrorInfo properties of CreateNewMirrorSet, by name",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

/// `set info("KEY")=VALUE` lines from the dedicated arguments and `mirror_info`.
pub(super) fn info_lines(
    dedicated: &[(Arg<'_>, &str)],
    mirror_info: Arg<'_>,
) -> Result<Vec<String>, RenderError> {
    let mut lines = Vec::new();
    for (arg, key) in dedicated {
        match arg.present() {
            Some(Value::Bool(b)) => {
                lines.push(format!("set info({})={}", os_str(key), u8::from(*b)));
            }
            Some(_) => {
                let value = text(*arg)?.unwrap_or_default();
                lines.push(format!("set info({})={}", os_str(key), os_str(&value)));
            }
            None => {}
        }
    }
    if let Some(map) = mirror_info.map() {
        for (key, value) in map {
            let value = match value {
                Value::Secret(_) => {
                    return Err(RenderError::new(
                        mirror_info.name(),
                        "cannot hold a secret: it is part of the command shown by `plan`",
                    ));
                }
                Value::Str(s) => s.clone(),
                other => other.to_string(),
            };
            lines.push(format!("set info({})={}", os_str(key), os_str(&value)));
        }
    }
    Ok(lines)
}

/// The query shared by create and join: `iris qlist` and the mirror name in `$v`.
pub(super) fn membership_query(target: &Target) -> String {
    format!(
        "{}{}value \"$out\"\n",
        target.qlist(),
        target.run("%SYS", &[value_line("$SYSTEM.Mirror.MirrorName()")])
    )
}

impl Operate for MirrorCreate {
    fn name(&self) -> &'static str {
        "iris.mirror_create"
    }

    fn description(&self) -> &'static str {
        "Create a mirror with this instance as primary (SYS.Mirror.CreateNewMirrorSet)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let mirror = required_text(p.mirror_name)?;
        if mirror.len() > 15 || !mirror.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RenderError::new(
                p.mirror_name.name(),
                format!("expected 1 to 15 letters and digits, found `{mirror}`"),
            ));
        }
        let system = text(p.system_name)?.map_or_else(String::new, |s| os_str(&s));
        let mut lines = info_lines(
            &[
                (p.use_ssl, "UseSSL"),
                (p.arbiter, "ArbiterNode"),
                (p.virtual_address, "VirtualAddress"),
            ],
            p.mirror_info,
        )?;
        lines.push(format!(
            "set sc=##class(SYS.Mirror).CreateNewMirrorSet({},{system},.info)",
            os_str(&mirror)
        ));
        lines.push(report("sc"));
        let act = format!(
            "[ -z \"$v$q_mirror_type\" ] || fail \"the instance is already a mirror member: \
             mirror '$v', $q_mirror_type $q_mirror_status\"\n{}\
             vendor SYS.Mirror.CreateNewMirrorSet \"$out\"\n",
            target.run("%SYS", &lines)
        );
        Ok(Plan {
            query: membership_query(&target),
            in_state: format!(
                "[ \"$v\" = {} ] && [ \"$q_mirror_status\" = Primary ]",
                quote(&mirror)
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
    use crate::iris::testing::{objectscript, probe, render, render_error, s};

    #[test]
    fn creates_the_mirror_with_the_documented_api() {
        let cmd = render(
            &Iris(MirrorCreate),
            &[
                ("instance", s("HSPC")),
                ("mirror_name", s("HSMIRROR")),
                ("system_name", s("HSPC_A")),
                ("arbiter", s("10.1.1.5|2188")),
                ("virtual_address", s("10.1.1.100/24,eth0")),
            ],
        );
        assert_eq!(
            objectscript(&cmd.script),
            [
                vec![
                    "write !,\"RUNBOOK\"_\":VALUE:\",$SYSTEM.Mirror.MirrorName(),!",
                    "halt"
                ],
                vec![
                    "set info(\"UseSSL\")=1",
                    "set info(\"ArbiterNode\")=\"10.1.1.5|2188\"",
                    "set info(\"VirtualAddress\")=\"10.1.1.100/24,eth0\"",
                    "set sc=##class(SYS.Mirror).CreateNewMirrorSet(\"HSMIRROR\",\"HSPC_A\",.info)",
                    "if $system.Status.IsOK(sc) { write !,\"RUNBOOK\"_\":OK\",! } else { write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText(sc),! }",
                    "halt"
                ],
            ]
        );
        assert!(cmd.script.contains("\nqlist=$(iris qlist HSPC 2>&1)"));
        assert!(cmd.script.contains(
            "if [ \"$v\" = HSMIRROR ] && [ \"$q_mirror_status\" = Primary ]; then printf '%s\\n' 'runbook: unchanged'; exit 0; fi\n"
        ));
        assert!(
            cmd.script
                .ends_with("vendor SYS.Mirror.CreateNewMirrorSet \"$out\"")
        );

        let cmd = render(
            &Iris(MirrorCreate),
            &[
                ("instance", s("HSPC")),
                ("mirror_name", s("M1")),
                ("use_ssl", Value::Bool(false)),
                (
                    "mirror_info",
                    Value::Map([("QOSTimeout".to_owned(), s("8000"))].into()),
                ),
            ],
        );
        assert_eq!(
            objectscript(&cmd.script)[1][..3],
            [
                "set info(\"UseSSL\")=0",
                "set info(\"QOSTimeout\")=\"8000\"",
                "set sc=##class(SYS.Mirror).CreateNewMirrorSet(\"M1\",,.info)",
            ]
        );
        let check = probe(
            &Iris(MirrorCreate),
            &[("instance", s("HSPC")), ("mirror_name", s("M1"))],
        );
        assert_eq!(objectscript(&check.script).len(), 1, "the query only");
        assert!(!check.script.contains("CreateNewMirrorSet"));
    }

    #[test]
    fn refuses_a_bad_mirror_name() {
        for bad in ["MY MIRROR", "ABCDEFGHIJKLMNOP", "a\"b"] {
            let err = render_error(
                &Iris(MirrorCreate),
                &[("instance", s("HSPC")), ("mirror_name", s(bad))],
            );
            assert_eq!(err.arg, Some("mirror_name"), "{bad}");
        }
    }
}
