//! `iris.mirror_add_database`: add a database to the mirror on the primary, with
//! `SYS.Mirror.AddDatabase(Directory, MirrorDBName)`.
//!
//! Seed 000, section 4.14 ("Adding the Databases to the Mirror": HSSYS, the Personal Community
//! database, its reporting database, HSAUDIT) and 3.9. The query opens the database
//! (`SYS.Database.%OpenId(Directory)`) and reads its `Mirrored` property: a mirrored database is
//! left alone, a directory without a database is an error.

use std::sync::LazyLock;

use super::{
    Operate, Plan, Target, os_str, report, required_text, session_params, text, value_line,
};
use crate::args::Args;
use crate::command::quote;
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};

pub struct MirrorAddDatabase;

crate::params! {
    struct Params {

        directory: ParamSpec::required(ParamType::Path,
            "The database's directory, as in the instance's configuration (for example /usr/irissys/mgr/hssys/)",
        ),
        mirror_db_name: ParamSpec::optional(ParamType::String,
            "The database's name in the mirror (default: its name in the configuration)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| session_params(Params::specs()));

/// `set db=##class(SYS.Database).%OpenId(DIR) write ... EXPR` where EXPR reads `db`, or
/// `missing` when there is no database there.
pub(super) fn database_value(directory: &str, expr: &str) -> String {
    format!(
        "set db=##class(SYS.Database).%OpenId({}) {}",
        os_str(directory),
        value_line(&format!("$s($isobject(db):{expr},1:\"missing\")"))
    )
}

impl Operate for MirrorAddDatabase {
    fn name(&self) -> &'static str {
        "iris.mirror_add_database"
    }

    fn description(&self) -> &'static str {
        "Add a database to the mirror on the primary (SYS.Mirror.AddDatabase)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let p = Params::read(args);
        let target = Target::session(self.name(), args)?;
        let directory = required_text(p.directory)?;
        let call = match text(p.mirror_db_name)? {
            Some(name) => format!(
                "set sc=##class(SYS.Mirror).AddDatabase({},{})",
                os_str(&directory),
                os_str(&name)
            ),
            None => format!(
                "set sc=##class(SYS.Mirror).AddDatabase({})",
                os_str(&directory)
            ),
        };
        let query = format!(
            "{}value \"$out\"\n",
            target.run("%SYS", &[database_value(&directory, "db.Mirrored")])
        );
        let act = format!(
            "[ \"$v\" != missing ] || fail {}\n{}vendor SYS.Mirror.AddDatabase \"$out\"\n",
            quote(&format!("no database in {directory}")),
            target.run("%SYS", &[call, report("sc")])
        );
        Ok(Plan {
            query,
            in_state: "[ \"$v\" = 1 ]".into(),
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
    use crate::iris::testing::{objectscript, probe, render, s};

    #[test]
    fn adds_the_database_after_reading_mirrored() {
        let cmd = render(
            &Iris(MirrorAddDatabase),
            &[
                ("instance", s("HSPC")),
                ("directory", s("/usr/irissys/mgr/hssys/")),
            ],
        );
        assert_eq!(
            objectscript(&cmd.script),
            [
                vec![
                    "set db=##class(SYS.Database).%OpenId(\"/usr/irissys/mgr/hssys/\") write !,\"RUNBOOK\"_\":VALUE:\",$s($isobject(db):db.Mirrored,1:\"missing\"),!",
                    "halt"
                ],
                vec![
                    "set sc=##class(SYS.Mirror).AddDatabase(\"/usr/irissys/mgr/hssys/\")",
                    "if $system.Status.IsOK(sc) { write !,\"RUNBOOK\"_\":OK\",! } else { write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText(sc),! }",
                    "halt"
                ]
            ]
        );
        assert!(cmd.script.contains("if [ \"$v\" = 1 ]; then printf '%s\\n' 'runbook: unchanged'; exit 0; fi\n[ \"$v\" != missing ] || fail 'no database in /usr/irissys/mgr/hssys/'\n"));
        let cmd = render(
            &Iris(MirrorAddDatabase),
            &[
                ("instance", s("HSPC")),
                ("directory", s("/d/")),
                ("mirror_db_name", s("HSAUDIT")),
            ],
        );
        assert_eq!(
            objectscript(&cmd.script)[1][0],
            "set sc=##class(SYS.Mirror).AddDatabase(\"/d/\",\"HSAUDIT\")"
        );
        let check = probe(
            &Iris(MirrorAddDatabase),
            &[("instance", s("HSPC")), ("directory", s("/d/"))],
        );
        assert!(!check.script.contains("AddDatabase"));
    }
}
