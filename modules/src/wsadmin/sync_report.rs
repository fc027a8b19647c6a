//! `wsadmin.sync_report`: the HTML synchronization reports of each feature's export, kept with
//! the run.
//!
//! Seed `003_86f8010c22e46869.txt`, step 5:
//! `CommunitiesRemoteAppService.generateSyncReport(syncedResourceInfoFilepath, outputDirPath)`
//! for each export of step 4, after `execfile("communitiesAdmin.py")`, in one wsadmin session.
//! Each feature gets its own output directory (`OUTPUT/activities/`), since each run writes the
//! same two files, `communityDifferences.html` and `orphanedRemoteApplications.html`: the lists
//! of steps 8 and 9 of the seed. Later Connections releases call the command
//! `generateSyncReports` and may prefix the files with the application (`Wikis_...`): `method`
//! selects the name, and a prefixed file is also copied to the plain name.
//!
//! Every export must exist before wsadmin starts, and both reports after it ends. The reports are
//! collected as run artifacts named `FEATURE-communityDifferences.html` and
//! `FEATURE-orphanedRemoteApplications.html`; the JSON names them:
//! `{"reports": {"activities": {"communityDifferences": ..., "orphanedRemoteApplications": ...}}}`.
//!
//! Check: 0 when, for every feature, both reports exist and are newer than its export (they were
//! made from this export), 1 otherwise.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{Session, abs_path, connection_params, features, features_param, jython, py_str};
use crate::args::Args;
use crate::command::{Command, quote};
use crate::module::{CHECK_IN_STATE, CHECK_WOULD_CHANGE, Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `wsadmin.sync_report` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncReportModule;

/// The two reports the command writes.
pub const REPORTS: [&str; 2] = ["communityDifferences", "orphanedRemoteApplications"];

crate::params! {
    struct Params {
        features: features_param("The features whose exports to report on"),
        dir: ParamSpec::required(ParamType::Path,
        "The directory of the exports (`dir` of wsadmin.export_synced_resources)",
    ),
        output_dir: ParamSpec::required(ParamType::Path,
        "Absolute directory for the reports; each feature gets a subdirectory",
    ),
        method: ParamSpec::optional(ParamType::Enum(&["generateSyncReport", "generateSyncReports"]),
            "The command's name: the seed's, or later releases'",
        )
        .with_default(Value::Str("generateSyncReport".into())),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    let mut params = connection_params();
    params.extend(Params::specs());
    params
});

/// One feature's export and report paths.
struct Paths {
    feature: &'static str,
    export: String,
    out: String,
}

fn paths(args: &Args) -> Result<Vec<Paths>, RenderError> {
    let p = Params::read(args);
    let features = features(p.features)?;
    let dir = abs_path(p.dir)?;
    let out = abs_path(p.output_dir)?;
    let (dir, out) = (dir.trim_end_matches('/'), out.trim_end_matches('/'));
    Ok(features
        .iter()
        .map(|f| Paths {
            feature: f.name,
            export: format!("{dir}/{}", f.export_file),
            out: format!("{out}/{}", f.name),
        })
        .collect())
}

impl Module for SyncReportModule {
    fn name(&self) -> &'static str {
        "wsadmin.sync_report"
    }

    fn description(&self) -> &'static str {
        "Generate the Communities sync reports of each feature's export and keep them (wsadmin)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let session = Session::new(self.name(), args)?;
        let paths = paths(args)?;
        let method = p
            .method
            .str()
            .unwrap_or_else(|| "generateSyncReport".into());
        let m = quote(self.name());
        let mut before = String::new();
        let mut lines = vec![format!("execfile({})", py_str("communitiesAdmin.py"))];
        let mut after = String::new();
        let mut reports = serde_json::Map::new();
        let mut files = Vec::new();
        for p in &paths {
            let (export, out) = (quote(&p.export), quote(&p.out));
            let _ = writeln!(
                before,
                "[ -s {export} ] || {{ printf '%s: no export %s: run wsadmin.export_synced_resources \
                 first\\n' {m} {export} >&2; exit 1; }}\nmkdir -p -- {out} || exit 1"
            );
            lines.push(format!(
                "CommunitiesRemoteAppService.{method}({}, {})",
                py_str(&p.export),
                py_str(&p.out)
            ));
            let mut entry = serde_json::Map::new();
            for report in REPORTS {
                let file = format!("{}/{report}.html", p.out);
                let _ = writeln!(before, "rm -f -- {} || exit 1", quote(&file));
                entry.insert(report.into(), file.clone().into());
                files.push((file, format!("{}-{report}.html", p.feature)));
            }
            let _ = writeln!(
                after,
                "for f in {reports}; do\n  \
                 if [ ! -f {out}/\"$f\".html ]; then\n    \
                 set -- {out}/*_\"$f\".html\n    \
                 if [ \"$#\" = 1 ] && [ -f \"$1\" ]; then cp -p -- \"$1\" {out}/\"$f\".html || exit 1\n    \
                 else printf '%s: %s wrote no %s.html in %s\\n' {m} {method} \"$f\" {out} >&2; exit 1; fi\n  \
                 fi\ndone",
                reports = REPORTS.join(" "),
            );
            reports.insert(p.feature.into(), entry.into());
        }
        let json = serde_json::json!({ "reports": reports });
        let mut cmd = session.command(&before, &jython(&lines), &after, &json);
        for (path, name) in files {
            cmd = cmd.collect(path, name);
        }
        Ok(vec![Operation::Remote(cmd)])
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        Session::new(self.name(), args)?;
        let mut script = String::new();
        for p in paths(args)? {
            let export = quote(&p.export);
            for report in REPORTS {
                let file = quote(&format!("{}/{report}.html", p.out));
                let _ = writeln!(
                    script,
                    "[ -f {file} ] && [ -f {export} ] && [ {file} -nt {export} ] || exit {CHECK_WOULD_CHANGE}"
                );
            }
        }
        let _ = write!(script, "exit {CHECK_IN_STATE}");
        Ok(Some(vec![Operation::Remote(Command::probe(script))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generic::testing::{
        TempDir, list, probe, remote, run, run_check, s, stderr, stdout,
    };
    use crate::wsadmin::testing::install;

    #[test]
    fn renders_one_report_per_export() {
        let raw = [
            ("features", list(&["activities", "wikis"])),
            ("dir", s("/temp-dir")),
            ("output_dir", s("/temp-dir/reports")),
        ];
        let cmd = remote(&SyncReportModule, &raw);
        assert!(cmd.script.contains(
            "'execfile(\"communitiesAdmin.py\")\n\
             CommunitiesRemoteAppService.generateSyncReport(\"/temp-dir/activitiesOutput.xml\", \"/temp-dir/reports/activities\")\n\
             CommunitiesRemoteAppService.generateSyncReport(\"/temp-dir/wikisOutput.xml\", \"/temp-dir/reports/wikis\")\n\
             print \"runbook-wsadmin: done\"'"
        ), "{}", cmd.script);
        assert!(cmd.script.contains(
            "[ -s /temp-dir/wikisOutput.xml ] || { printf '%s: no export %s: run wsadmin.export_synced_resources first\\n' wsadmin.sync_report /temp-dir/wikisOutput.xml >&2; exit 1; }\n"
        ));
        let names: Vec<_> = cmd.artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "activities-communityDifferences.html",
                "activities-orphanedRemoteApplications.html",
                "wikis-communityDifferences.html",
                "wikis-orphanedRemoteApplications.html"
            ]
        );
        assert_eq!(
            cmd.artifacts[3].path,
            "/temp-dir/reports/wikis/orphanedRemoteApplications.html"
        );
        let check = probe(&SyncReportModule, &raw);
        assert_eq!(
            check.script.lines().next(),
            Some(
                "[ -f /temp-dir/reports/activities/communityDifferences.html ] && [ -f /temp-dir/activitiesOutput.xml ] && [ /temp-dir/reports/activities/communityDifferences.html -nt /temp-dir/activitiesOutput.xml ] || exit 1"
            )
        );
        let later = remote(
            &SyncReportModule,
            &[&raw[..], &[("method", s("generateSyncReports"))]].concat(),
        );
        assert!(
            later
                .script
                .contains("CommunitiesRemoteAppService.generateSyncReports(\"")
        );
    }

    #[test]
    fn reports_with_the_stand_in_and_the_check_follows_the_exports() {
        let dir = TempDir::new("wsadmin-report");
        let wsadmin = install(&dir);
        let wsadmin = s(wsadmin.to_str().expect("utf-8"));
        let exports = dir.str("exports");
        let raw = [
            ("wsadmin", wsadmin.clone()),
            ("features", list(&["files"])),
            ("dir", s(&exports)),
            ("output_dir", s(&dir.str("reports"))),
        ];
        let with_log = |mut cmd: Command| {
            cmd.env
                .insert("WSADMIN_STANDIN_LOG".into(), s(&dir.str("log")));
            cmd
        };
        // No export yet: the step fails before wsadmin starts.
        let out = run(&with_log(remote(&SyncReportModule, &raw)), dir.path());
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("run wsadmin.export_synced_resources first"));
        assert!(!dir.join("log").exists(), "wsadmin did not run");
        let check = probe(&SyncReportModule, &raw);
        assert_eq!(run_check(&check, dir.path()), 1);

        let export = with_log(remote(
            &super::super::ExportModule,
            &[
                ("wsadmin", wsadmin),
                ("features", list(&["files"])),
                ("dir", s(&exports)),
            ],
        ));
        assert!(run(&export, dir.path()).status.success());
        assert_eq!(run_check(&check, dir.path()), 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let out = run(&with_log(remote(&SyncReportModule, &raw)), dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        let path = json["reports"]["files"]["orphanedRemoteApplications"]
            .as_str()
            .expect("path");
        let html = std::fs::read_to_string(path).expect("report");
        assert!(html.contains("<html") && html.contains("Files"), "{html}");
        assert_eq!(run_check(&check, dir.path()), 0);
        // A newer export makes the reports stale.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(run(&export, dir.path()).status.success());
        assert_eq!(run_check(&check, dir.path()), 1);
    }
}
