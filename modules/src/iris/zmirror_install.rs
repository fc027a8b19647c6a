//! `iris.zmirror_install`: install the `^ZMIRROR` routine in `%SYS`, with `%Routine`
//! (`%New`, `WriteLine`, `Save`, `Compile`).
//!
//! Seed 000, section 4.23 ("Creating the ^ZMIRROR Routine" on both mirror members: the
//! `NotifyBecomePrimary` entry point starts the productions after a failover). The query reads
//! the routine's current source line by line (`%Routine.%OpenId("ZMIRROR.mac")`, `ReadLine`):
//! a routine with exactly the wanted lines is left alone; otherwise it is written, saved and
//! compiled.

use std::sync::LazyLock;

use super::{Operate, Plan, Target, os_str, report, required_text, session_params, value_line};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct ZmirrorInstall;

crate::params! {
    struct Params {

        content: ParamSpec::required(ParamType::String,
            "The routine's source, as in seed 000 section 4.23",
        ),
        routine: ParamSpec::optional(ParamType::String,
            "The routine's name (default ZMIRROR)",
        )
        .with_default(Value::Str("ZMIRROR".into())),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

impl Operate for ZmirrorInstall {
    fn name(&self) -> &'static str {
        "iris.zmirror_install"
    }

    fn description(&self) -> &'static str {
        "Install the ^ZMIRROR routine in %SYS (save and compile) unless it has this source"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let content = required_text(p.content)?;
        let routine = required_text(p.routine)?;
        if !routine
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '%')
        {
            return Err(RenderError::new(
                p.routine.name(),
                format!("expected a routine name such as ZMIRROR, found `{routine}`"),
            ));
        }
        let id = os_str(&format!("{routine}.mac"));
        let read = format!(
            "set r=##class(%Routine).%OpenId({id}) if $isobject(r) {{ while 'r.AtEnd {{ write !,\"RUNBOOK\"_\":LINE:\",r.ReadLine() }} }} {}",
            value_line("$isobject(r)")
        );
        let query = format!(
            "{}value \"$out\"\nhave=$(printf '%s\\n' \"$out\" | sed -n 's/.*RUNBOOK:LINE://p')\n\
             want=$(printf '%s\\n' {})\n",
            target.run("%SYS", &[read]),
            quote(content.trim_end_matches('\n'))
        );
        let mut write = vec![format!("set r=##class(%Routine).%New({id})")];
        for line in content.trim_end_matches('\n').lines() {
            write.push(format!("do r.WriteLine({})", os_str(line)));
        }
        write.push("set sc=r.Save() if $system.Status.IsOK(sc) { set sc=r.Compile() }".into());
        write.push(report("sc"));
        let act = format!(
            "{}vendor %Routine.Compile \"$out\"\n",
            target.run("%SYS", &write)
        );
        Ok(Plan {
            query,
            in_state: "[ \"$v\" = 1 ] && [ \"$have\" = \"$want\" ]".into(),
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
    use crate::iris::testing::{objectscript, render, s};

    #[test]
    fn writes_saves_and_compiles_the_routine() {
        let content = "ZMIRROR\n    quit\nNotifyBecomePrimary() public {\n    set $namespace=\"HSLIB\"\n    do ##class(HS.Director).StartAll()\n}\n";
        let cmd = render(
            &Iris(ZmirrorInstall),
            &[("instance", s("HSPC")), ("content", s(content))],
        );
        let sessions = objectscript(&cmd.script);
        assert_eq!(
            sessions[0][0],
            "set r=##class(%Routine).%OpenId(\"ZMIRROR.mac\") if $isobject(r) { while 'r.AtEnd { write !,\"RUNBOOK\"_\":LINE:\",r.ReadLine() } } write !,\"RUNBOOK\"_\":VALUE:\",$isobject(r),!"
        );
        assert_eq!(
            sessions[1][..8],
            [
                "set r=##class(%Routine).%New(\"ZMIRROR.mac\")",
                "do r.WriteLine(\"ZMIRROR\")",
                "do r.WriteLine(\"    quit\")",
                "do r.WriteLine(\"NotifyBecomePrimary() public {\")",
                "do r.WriteLine(\"    set $namespace=\"\"HSLIB\"\"\")",
                "do r.WriteLine(\"    do ##class(HS.Director).StartAll()\")",
                "do r.WriteLine(\"}\")",
                "set sc=r.Save() if $system.Status.IsOK(sc) { set sc=r.Compile() }",
            ]
        );
        assert!(
            cmd.script
                .contains("if [ \"$v\" = 1 ] && [ \"$have\" = \"$want\" ]; then")
        );
    }
}
