//! `wsadmin.export_synced_resources`: each feature's XML record of the communities it is synced
//! with, kept with the run.
//!
//! Seed `003_86f8010c22e46869.txt`, step 4: for each affected feature (all of them when
//! Communities failed), `SERVICE.exportSyncedResourceInfo("DIR/featureOutput.xml", "community")`
//! after the feature's `execfile("featureAdmin.py")`, in one wsadmin session. The file names are
//! the seed's examples (`activitiesOutput.xml`, `blogsOutput.xml`, `filesOutput.xml`,
//! `wikisOutput.xml`). The seed's table heads two rows with other spellings
//! (`ActivityService`, `exportSynchedResourceInfo`); its examples, which this module follows,
//! use `ActivitiesService` and `exportSyncedResourceInfo`.
//!
//! Old exports are removed first, and each file must exist and be non-empty afterwards, so a
//! stale file from an earlier incident is never taken for this one's. Each file is collected as a
//! run artifact under its own name, and the JSON names them: `{"exports": {"activities":
//! "/temp-dir/activitiesOutput.xml"}}`. The exports are written by the server process: run the
//! step on the host (and with a directory) where it writes them.
//!
//! It only reads the applications, so running it again is harmless (idempotent). There is no
//! check (`None`): an export reflects the state of the moment, so an existing file does not
//! mean the step is done.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{Session, abs_path, connection_params, features, features_param, jython, py_str};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

/// The `wsadmin.export_synced_resources` module.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportModule;

crate::params! {
    struct Params {
        features: features_param(
        "The features to export (all of them if Communities failed)",
    ),
        dir: ParamSpec::required(ParamType::Path,
        "Absolute directory for the XML files (created if missing)",
    ),
        event_type: ParamSpec::optional(ParamType::String, "The eventType argument")
            .with_default(Value::Str("community".into())),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| {
    let mut params = connection_params();
    params.extend(Params::specs());
    params
});

impl Module for ExportModule {
    fn name(&self) -> &'static str {
        "wsadmin.export_synced_resources"
    }

    fn description(&self) -> &'static str {
        "Export each feature's synced resource info to XML and keep the files (wsadmin)"
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
        let features = features(p.features)?;
        let dir = abs_path(p.dir)?;
        let dir = dir.trim_end_matches('/');
        let event_type = p.event_type.str().unwrap_or_else(|| "community".into());
        let m = quote(self.name());
        let mut before = format!(
            "mkdir -p -- {} || exit 1\n",
            quote(if dir.is_empty() { "/" } else { dir })
        );
        let mut lines = Vec::new();
        let mut after = String::new();
        let mut exports = serde_json::Map::new();
        let mut files = Vec::new();
        for f in &features {
            let path = format!("{dir}/{}", f.export_file);
            let _ = writeln!(before, "rm -f -- {} || exit 1", quote(&path));
            lines.push(format!("execfile({})", py_str(f.script)));
            lines.push(format!(
                "{}.exportSyncedResourceInfo({}, {})",
                f.service,
                py_str(&path),
                py_str(&event_type)
            ));
            let _ = writeln!(
                after,
                "[ -s {p} ] || {{ printf '%s: %s.exportSyncedResourceInfo wrote nothing to %s\\n' \
                 {m} {service} {p} >&2; exit 1; }}",
                p = quote(&path),
                service = f.service,
            );
            exports.insert(f.name.into(), path.clone().into());
            files.push((path, f.export_file));
        }
        let json = serde_json::json!({ "exports": exports });
        let mut cmd = session.command(&before, &jython(&lines), &after, &json);
        for (path, name) in files {
            cmd = cmd.collect(path, name);
        }
        Ok(vec![Operation::Remote(cmd)])
    }

    /// `None`: see the module documentation.
    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        self.render(args)?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Artifact;
    use crate::generic::testing::{TempDir, check, list, remote, run, s, stderr, stdout};
    use crate::wsadmin::testing::install;

    #[test]
    fn renders_the_seed_commands_and_collects_the_files() {
        let cmd = remote(
            &ExportModule,
            &[
                ("features", list(&["activities", "blogs", "files", "wikis"])),
                ("dir", s("/temp-dir/")),
            ],
        );
        assert!(cmd.script.contains(
            "printf '%s\\n' 'execfile(\"activitiesAdmin.py\")\n\
             ActivitiesService.exportSyncedResourceInfo(\"/temp-dir/activitiesOutput.xml\", \"community\")\n\
             execfile(\"blogsAdmin.py\")\n\
             BlogsAdminService.exportSyncedResourceInfo(\"/temp-dir/blogsOutput.xml\", \"community\")\n\
             execfile(\"filesAdmin.py\")\n\
             FilesLibraryService.exportSyncedResourceInfo(\"/temp-dir/filesOutput.xml\", \"community\")\n\
             execfile(\"wikisAdmin.py\")\n\
             WikisLibraryService.exportSyncedResourceInfo(\"/temp-dir/wikisOutput.xml\", \"community\")\n\
             print \"runbook-wsadmin: done\"' > \"$work/step.py\""
        ), "{}", cmd.script);
        assert!(cmd.script.contains(
            "cd /opt/IBM/WebSphere/AppServer/profiles/Dmgr01/bin || exit 1\n\
             mkdir -p -- /temp-dir || exit 1\n\
             rm -f -- /temp-dir/activitiesOutput.xml || exit 1\n"
        ));
        assert!(cmd.script.contains(
            "[ -s /temp-dir/wikisOutput.xml ] || { printf '%s: %s.exportSyncedResourceInfo wrote nothing to %s\\n' wsadmin.export_synced_resources WikisLibraryService /temp-dir/wikisOutput.xml >&2; exit 1; }\n"
        ));
        assert_eq!(
            cmd.artifacts[0],
            Artifact {
                path: "/temp-dir/activitiesOutput.xml".into(),
                name: "activitiesOutput.xml".into()
            }
        );
        assert_eq!(cmd.artifacts.len(), 4);
        let args = check(
            &ExportModule,
            &[("features", list(&["blogs"])), ("dir", s("temp"))],
        );
        assert_eq!(
            ExportModule.render(&args).expect_err("relative").arg,
            Some("dir")
        );
    }

    #[test]
    fn exports_with_the_stand_in_and_real_sh() {
        let dir = TempDir::new("wsadmin-export");
        let wsadmin = install(&dir);
        let out_dir = dir.str("exports");
        std::fs::create_dir_all(&out_dir).expect("mkdir");
        std::fs::write(dir.join("exports/blogsOutput.xml"), "stale").expect("stale");
        let mut cmd = remote(
            &ExportModule,
            &[
                ("wsadmin", s(wsadmin.to_str().expect("utf-8"))),
                ("features", list(&["blogs", "files"])),
                ("dir", s(&out_dir)),
            ],
        );
        cmd.env
            .insert("WSADMIN_STANDIN_LOG".into(), s(&dir.str("log")));
        let out = run(&cmd, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(
            json["exports"]["files"],
            format!("{out_dir}/filesOutput.xml")
        );
        let xml = std::fs::read_to_string(dir.join("exports/blogsOutput.xml")).expect("export");
        assert!(xml.starts_with("<?xml") && xml.contains("Blog"), "{xml}");
        assert!(dir.join("exports/filesOutput.xml").exists());
        assert!(!dir.join("exports/activitiesOutput.xml").exists());
    }
}
