//! `iris.task_export` and `iris.task_import`: move Task Manager tasks between members, with
//! `%SYS.Task.ExportTasks(TaskIdList, FileName)` and `%SYS.Task.ImportTasks(FileName)`.
//!
//! Seed 000, sections 4.21 ("Exporting the Reporting Tasks": Cube Manager Build and Cube
//! Manager Synch of the reporting namespace) and 4.22 step 4 ("Import the tasks" on the new
//! primary): tasks are not mirrored. Tasks are named, not numbered: the modules find their IDs
//! with `SELECT ID FROM %SYS.Task WHERE Name = ?`.
//!
//! Export is in state when the file exists and names every task; it fails, before exporting,
//! when a task is missing. The file is kept as a run artifact (`tasks.xml`). Import is in state
//! when every named task exists.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{
    Operate, Plan, Target, namespace_param, os_str, report, required_text, session_params,
    value_line,
};
use crate::args::Args;
use crate::command::{Artifact, quote};
use crate::module::RenderError;
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

pub struct TaskExport;
pub struct TaskImport;

crate::params! {
    struct Params {
        tasks: ParamSpec::required(ParamType::List(Box::new(ParamType::String)),
            "The tasks' names (for example `Cube Manager Build - HSCOMMUNITYREPORTS`)",
        ),
        file: ParamSpec::required(ParamType::Path,
            "The XML file on the host (an absolute path)",
        ),
        namespace: namespace_param("%SYS"),
    }
}

fn params() -> Vec<ParamSpec> {
    session_params(Params::specs())
}

static EXPORT_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(params);
static IMPORT_PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(params);

struct Tasks {
    target: Target,
    names: Vec<String>,
    file: String,
    namespace: String,
}

impl Tasks {
    fn new(module: &'static str, args: &Args) -> Result<Self, RenderError> {
        let p = Params::read(args);
        let target = Target::session(module, args)?;
        let mut names = Vec::new();
        for value in p.tasks.list().unwrap_or_default() {
            match value {
                Value::Str(s) if !s.trim().is_empty() => names.push(s.clone()),
                Value::Secret(_) => {
                    return Err(RenderError::new(p.tasks.name(), "cannot hold a secret"));
                }
                Value::Str(_) => return Err(RenderError::new(p.tasks.name(), "empty task name")),
                other => names.push(other.to_string()),
            }
        }
        if names.is_empty() {
            return Err(RenderError::new(p.tasks.name(), "name at least one task"));
        }
        let file = required_text(p.file)?;
        if !file.starts_with('/') && !file.starts_with('<') {
            return Err(RenderError::new(
                p.file.name(),
                format!("expected an absolute path, found `{file}`"),
            ));
        }
        let namespace = required_text(p.namespace)?;
        Ok(Self {
            target,
            names,
            file,
            namespace,
        })
    }

    /// ObjectScript that collects the tasks' IDs in `ids`, then writes how many it found.
    fn lookup(&self) -> Vec<String> {
        let mut lines = vec!["set ids=\"\"".to_owned()];
        for name in &self.names {
            lines.push(format!(
                "set rs=##class(%SQL.Statement).%ExecDirect(,\"SELECT ID FROM %SYS.Task WHERE Name = ?\",{}) if rs.%Next() {{ set ids=ids_$lb(rs.ID) }}",
                os_str(name)
            ));
        }
        lines
    }

    /// Runs the lookup; `$v` is the number of tasks found.
    fn count(&self) -> String {
        let mut lines = self.lookup();
        lines.push(value_line("$ll(ids)"));
        format!(
            "{}value \"$out\"\n",
            self.target.run(&self.namespace, &lines)
        )
    }

    fn all_found(&self) -> String {
        format!("[ \"$v\" = {} ]", self.names.len())
    }
}

impl Operate for TaskExport {
    fn name(&self) -> &'static str {
        "iris.task_export"
    }

    fn description(&self) -> &'static str {
        "Export named Task Manager tasks to an XML file (%SYS.Task.ExportTasks)"
    }

    fn params(&self) -> &[ParamSpec] {
        &EXPORT_PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let tasks = Tasks::new(self.name(), args)?;
        let file = quote(&tasks.file);
        let mut in_state = format!("[ -f {file} ]");
        for name in &tasks.names {
            let _ = write!(in_state, " && grep -qF -- {} {file}", quote(name));
        }
        let mut export = tasks.lookup();
        export.push(format!(
            "set sc=##class(%SYS.Task).ExportTasks(ids,{})",
            os_str(&tasks.file)
        ));
        export.push(report("sc"));
        let act = format!(
            "{}{} || fail \"found $v of the {} tasks: \"{}\n{}vendor %SYS.Task.ExportTasks \"$out\"\n",
            tasks.count(),
            tasks.all_found(),
            tasks.names.len(),
            quote(&tasks.names.join(", ")),
            tasks.target.run(&tasks.namespace, &export)
        );
        let artifacts = if tasks.file.starts_with('/') {
            vec![Artifact {
                path: tasks.file.clone(),
                name: "tasks.xml".into(),
            }]
        } else {
            Vec::new()
        };
        Ok(Plan {
            query: String::new(),
            in_state,
            act,
            session: true,
            artifacts,
            target: tasks.target,
        })
    }
}

impl Operate for TaskImport {
    fn name(&self) -> &'static str {
        "iris.task_import"
    }

    fn description(&self) -> &'static str {
        "Import Task Manager tasks from an XML file unless they exist (%SYS.Task.ImportTasks)"
    }

    fn params(&self) -> &[ParamSpec] {
        &IMPORT_PARAMS
    }

    fn plan(&self, args: &Args) -> Result<Plan, RenderError> {
        let tasks = Tasks::new(self.name(), args)?;
        let act = format!(
            "[ -f {file} ] || fail {missing}\n{}vendor %SYS.Task.ImportTasks \"$out\"\n",
            tasks.target.run(
                &tasks.namespace,
                &[
                    format!(
                        "set sc=##class(%SYS.Task).ImportTasks({})",
                        os_str(&tasks.file)
                    ),
                    report("sc"),
                ]
            ),
            file = quote(&tasks.file),
            missing = quote(&format!("{} does not exist", tasks.file)),
        );
        Ok(Plan {
            query: tasks.count(),
            in_state: tasks.all_found(),
            act,
            session: true,
            artifacts: Vec::new(),
            target: tasks.target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iris::Iris;
    use crate::iris::testing::{objectscript, probe, render, render_error, s};

    fn raw() -> Vec<(&'static str, Value)> {
        vec![
            ("instance", s("HSPC")),
            (
                "tasks",
                Value::List(vec![
                    s("Cube Manager Build - HSCOMMUNITYREPORTS"),
                    s("Cube Manager Synch - HSCOMMUNITYREPORTS"),
                ]),
            ),
            ("file", s("/shared/tasks.xml")),
        ]
    }

    #[test]
    fn exports_the_named_tasks_and_keeps_the_file() {
        let cmd = render(&Iris(TaskExport), &raw());
        let sessions = objectscript(&cmd.script);
        assert_eq!(
            sessions[1],
            [
                "set ids=\"\"",
                "set rs=##class(%SQL.Statement).%ExecDirect(,\"SELECT ID FROM %SYS.Task WHERE Name = ?\",\"Cube Manager Build - HSCOMMUNITYREPORTS\") if rs.%Next() { set ids=ids_$lb(rs.ID) }",
                "set rs=##class(%SQL.Statement).%ExecDirect(,\"SELECT ID FROM %SYS.Task WHERE Name = ?\",\"Cube Manager Synch - HSCOMMUNITYREPORTS\") if rs.%Next() { set ids=ids_$lb(rs.ID) }",
                "set sc=##class(%SYS.Task).ExportTasks(ids,\"/shared/tasks.xml\")",
                "if $system.Status.IsOK(sc) { write !,\"RUNBOOK\"_\":OK\",! } else { write !,\"RUNBOOK\"_\":ERROR:\",$system.Status.GetErrorText(sc),! }",
                "halt"
            ]
        );
        assert_eq!(sessions[0].last().map(String::as_str), Some("halt"));
        assert!(cmd.script.contains("if [ -f /shared/tasks.xml ] && grep -qF -- 'Cube Manager Build - HSCOMMUNITYREPORTS' /shared/tasks.xml && grep -qF -- 'Cube Manager Synch - HSCOMMUNITYREPORTS' /shared/tasks.xml; then"));
        assert_eq!(cmd.artifacts[0].path, "/shared/tasks.xml");
        let check = probe(&Iris(TaskExport), &raw());
        assert!(objectscript(&check.script).is_empty(), "the file only");
    }

    #[test]
    fn imports_unless_every_task_exists() {
        let cmd = render(&Iris(TaskImport), &raw());
        let sessions = objectscript(&cmd.script);
        assert_eq!(sessions[0].len(), 5, "lookup of two tasks, count, halt");
        assert_eq!(
            sessions[1][0],
            "set sc=##class(%SYS.Task).ImportTasks(\"/shared/tasks.xml\")"
        );
        assert!(cmd.script.contains("if [ \"$v\" = 2 ]; then"));
        let mut bad = raw();
        bad[2].1 = s("tasks.xml");
        assert_eq!(render_error(&Iris(TaskImport), &bad).arg, Some("file"));
    }
}
