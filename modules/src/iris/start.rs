//! `iris.start`: start an instance, `iris start INSTANCE [CPF]`.
//!
//! Seed 000, section 4.22 step 3 ("Restart instance A. It will come up as the backup failover
//! member: `iris start <instance-name>`") and 4.15 step 3. The query is `iris qlist INSTANCE`:
//! a `running` instance is left alone. After `iris start` the module asks `iris qlist` again and
//! fails unless the instance now says `running`.

use std::sync::LazyLock;

use super::{Operate, Plan, Target, plain_params, text};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};

pub struct Start;

crate::params! {
    struct Params {
        cpf: ParamSpec::optional(ParamType::Path,
            "Start with this configuration file (`iris start INSTANCE CPF`)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| plain_params(Params::specs()));

impl Operate for Start {
    fn name(&self) -> &'static str {
        "iris.start"
    }

    fn description(&self) -> &'static str {
        "Start an IRIS instance with `iris start` unless `iris qlist` says it is running"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::plain(self.name(), args)?;
        let mut command = format!("{} start {}", target.iris(), quote(&target.instance));
        if let Some(cpf) = text(p.cpf)? {
            command.push(' ');
            command.push_str(&quote(&cpf));
        }
        let act = format!(
            "out=$({command} </dev/null 2>&1) || fail \"iris start failed: $(last \"$out\")\"\n\
             {qlist}[ \"$q_running\" = running ] || fail \"iris start returned but the instance is $q_status\"\n",
            qlist = target.qlist()
        );
        Ok(Plan {
            query: target.qlist(),
            in_state: "[ \"$q_running\" = running ]".into(),
            act,
            session: false,
            artifacts: Vec::new(),
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::Iris;
    use crate::iris::testing::{probe, render, s};

    #[test]
    fn starts_with_the_vendor_command_after_asking_qlist() {
        let cmd = render(
            &Iris(Start),
            &[
                ("instance", s("IRIS")),
                ("iris", s("/usr/irissys/bin/iris")),
            ],
        );
        assert_eq!(
            cmd.script,
            "fail() { printf '%s: %s\\n' iris.start \"$*\" >&2; exit 1; }
last() { printf '%s\\n' \"$1\" | sed '/^[[:space:]]*$/d' | tail -n 1; }
qlist=$(/usr/irissys/bin/iris qlist IRIS 2>&1) || fail \"iris qlist failed: $(last \"$qlist\")\"
IFS='^' read -r q_name q_dir q_version q_status q_cpf q_superserver q_web q_jdbc q_state q_product q_mirror_type q_mirror_status q_datadir <<EOF
$qlist
EOF
[ -n \"$q_name\" ] || fail 'iris qlist knows no instance IRIS'
q_running=${q_status%%,*}
if [ \"$q_running\" = running ]; then printf '%s\\n' 'runbook: unchanged'; exit 0; fi
out=$(/usr/irissys/bin/iris start IRIS </dev/null 2>&1) || fail \"iris start failed: $(last \"$out\")\"
qlist=$(/usr/irissys/bin/iris qlist IRIS 2>&1) || fail \"iris qlist failed: $(last \"$qlist\")\"
IFS='^' read -r q_name q_dir q_version q_status q_cpf q_superserver q_web q_jdbc q_state q_product q_mirror_type q_mirror_status q_datadir <<EOF
$qlist
EOF
[ -n \"$q_name\" ] || fail 'iris qlist knows no instance IRIS'
q_running=${q_status%%,*}
[ \"$q_running\" = running ] || fail \"iris start returned but the instance is $q_status\""
        );
        let cmd = render(
            &Iris(Start),
            &[("instance", s("IRIS")), ("cpf", s("/tmp/my iris.cpf"))],
        );
        assert!(
            cmd.script
                .contains("\nout=$(iris start IRIS '/tmp/my iris.cpf' </dev/null 2>&1)")
        );
        let check = probe(&Iris(Start), &[("instance", s("IRIS"))]);
        assert!(
            check
                .script
                .starts_with("fail() { printf '%s: %s\\n' iris.start \"$*\" >&2; exit 2; }")
        );
        assert!(
            check
                .script
                .ends_with("if [ \"$q_running\" = running ]; then exit 0; else exit 1; fi")
        );
        assert!(!check.script.contains(" start "));
    }
}
