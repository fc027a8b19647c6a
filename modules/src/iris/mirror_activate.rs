//! `iris.mirror_activate`: activate and catch up mirrored databases on a backup (or async)
//! member, with `SYS.Mirror.ActivateMirroredDatabase(Directory)` and
//! `SYS.Mirror.CatchupDB($lb(SFN))`.
//!
//! Seed 000, section 4.16 ("Activating and Catching up the Databases on the Backup Failover
//! Member", after their IRIS.DAT files were copied from the primary in 4.15) and 3.11. The
//! query reads each database's `Mirrored`, `MirrorActivationRequired` and `MirrorDBCatchup`
//! (`SYS.Database.%OpenId(Directory)`): a database that needs activation is activated, then one
//! that needs activation or catch-up is caught up; one that is not mirrored on this member (its
//! IRIS.DAT was not copied) is an error.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::mirror_add_database::database_value;
use super::{Operate, Plan, Target, os_str, report, session_params};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct MirrorActivate;

crate::params! {
    struct Params {
directories: ParamSpec::required(ParamType::List(Box::new(ParamType::Path)),
        "The mirrored databases' directories on this member",
    ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

impl Operate for MirrorActivate {
    fn name(&self) -> &'static str {
        "iris.mirror_activate"
    }

    fn description(&self) -> &'static str {
        "Activate and catch up mirrored databases on a backup (SYS.Mirror.CatchupDB)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let mut directories = Vec::new();
        for value in p.directories.list().unwrap_or_default() {
            match value {
                Value::Str(s) if !s.is_empty() => directories.push(s.clone()),
                Value::Secret(_) => {
                    return Err(RenderError::new(
                        p.directories.name(),
                        "cannot hold a secret",
                    ));
                }
                Value::Str(_) => {
                    return Err(RenderError::new(p.directories.name(), "empty directory"));
                }
                other => directories.push(other.to_string()),
            }
        }
        if directories.is_empty() {
            return Err(RenderError::new(
                p.directories.name(),
                "name at least one database",
            ));
        }
        let probes: Vec<String> = directories
            .iter()
            .map(|d| {
                database_value(
                    d,
                    "db.Mirrored_\"^\"_db.MirrorActivationRequired_\"^\"_db.MirrorDBCatchup",
                )
            })
            .collect();
        let query = format!(
            "{}value \"$out\"\n\
             vals=$(printf '%s\\n' \"$out\" | sed -n 's/.*RUNBOOK:VALUE://p')\n\
             [ \"$(printf '%s\\n' \"$vals\" | wc -l)\" -eq {} ] || fail \"iris session failed: $(last \"$out\")\"\n",
            target.run("%SYS", &probes),
            directories.len()
        );
        let mut act = String::new();
        for (i, dir) in directories.iter().enumerate() {
            let _ = write!(
                act,
                "f=$(printf '%s\\n' \"$vals\" | sed -n '{n}p')\n\
                 case $f in 1^0^0) ;; 1^*)\n\
                 case $f in 1^1^*)\n{activate}vendor SYS.Mirror.ActivateMirroredDatabase \"$out\";; esac\n\
                 {catchup}vendor SYS.Mirror.CatchupDB \"$out\";;\n\
                 *) fail {not_mirrored};; esac\n",
                n = i + 1,
                activate = target.run(
                    "%SYS",
                    &[
                        format!(
                            "set sc=##class(SYS.Mirror).ActivateMirroredDatabase({})",
                            os_str(dir)
                        ),
                        report("sc"),
                    ]
                ),
                catchup = target.run(
                    "%SYS",
                    &[
                        format!(
                            "set sc=##class(SYS.Mirror).CatchupDB($lb(##class(SYS.Database).%OpenId({}).SFN))",
                            os_str(dir)
                        ),
                        report("sc"),
                    ]
                ),
                not_mirrored = quote(&format!(
                    "{dir} is not a mirrored database on this member (copy its IRIS.DAT from the primary first): "
                )) + "\"$f\"",
            );
        }
        let done = vec!["1^0^0"; directories.len()].join("\n");
        Ok(Plan {
            query,
            in_state: format!("[ \"$vals\" = {} ]", quote(&done)),
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
    fn activates_then_catches_up_each_database_that_needs_it() {
        let cmd = render(
            &Iris(MirrorActivate),
            &[
                ("instance", s("HSPC")),
                (
                    "directories",
                    Value::List(vec![s("/mgr/hssys/"), s("/mgr/hspc/")]),
                ),
            ],
        );
        let sessions = objectscript(&cmd.script);
        assert_eq!(
            sessions[0],
            [
                "set db=##class(SYS.Database).%OpenId(\"/mgr/hssys/\") write !,\"RUNBOOK\"_\":VALUE:\",$s($isobject(db):db.Mirrored_\"^\"_db.MirrorActivationRequired_\"^\"_db.MirrorDBCatchup,1:\"missing\"),!",
                "set db=##class(SYS.Database).%OpenId(\"/mgr/hspc/\") write !,\"RUNBOOK\"_\":VALUE:\",$s($isobject(db):db.Mirrored_\"^\"_db.MirrorActivationRequired_\"^\"_db.MirrorDBCatchup,1:\"missing\"),!",
                "halt"
            ]
        );
        assert_eq!(
            sessions[1][0],
            "set sc=##class(SYS.Mirror).ActivateMirroredDatabase(\"/mgr/hssys/\")"
        );
        assert_eq!(
            sessions[2][0],
            "set sc=##class(SYS.Mirror).CatchupDB($lb(##class(SYS.Database).%OpenId(\"/mgr/hssys/\").SFN))"
        );
        assert_eq!(
            sessions[4][0],
            "set sc=##class(SYS.Mirror).CatchupDB($lb(##class(SYS.Database).%OpenId(\"/mgr/hspc/\").SFN))"
        );
        assert!(cmd.script.contains(&format!(
            "if [ \"$vals\" = {} ]; then",
            quote("1^0^0\n1^0^0")
        )));
        assert_eq!(
            render_error(
                &Iris(MirrorActivate),
                &[
                    ("instance", s("HSPC")),
                    ("directories", Value::List(vec![]))
                ]
            )
            .arg,
            Some("directories")
        );
    }
}
