//! `gtm.database_create`: the global directory and the database files of an instance.
//!
//! Seed: the `db_create` script (`mumps -r ^GDE @gdemsr`, then `mupip create`), and the
//! "Changing the global directory" example (extra regions mapped by global name). The GDE
//! commands go to GDE on standard input, one quoted line each: `DEFAULT` is the file
//! `DIR/gtm.dat`; each extra region `R` gets the segment `R` and the file `DIR/r.dat`, and
//! `names` maps global names to regions.
//!
//! Check: the global directory and every database file exist. Apply creates what is missing
//! (the global directory only when there is none; `mupip create -region=R` for each missing
//! file) and prints the unchanged marker when nothing was.

use std::sync::LazyLock;

use super::{Env, check_name, lines, one, run, with_env};
use crate::args::Args;
use crate::command::quote;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};

#[derive(Debug, Clone, Copy, Default)]
pub struct DatabaseCreateModule;

crate::params! {
    struct Params {

        regions: ParamSpec::optional(ParamType::List(Box::new(ParamType::String)),
            "Extra regions besides DEFAULT; region R lives in DIR/r.dat",
        ),
        names: ParamSpec::optional(ParamType::Map(Box::new(ParamType::String)),
            "Global names mapped to extra regions (`A*: AREG`)",
        ),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

/// The layout: GDE command lines and the `(region, file)` pairs.
struct Layout {
    gde: Vec<String>,
    files: Vec<(String, String)>,
}

fn layout(env: &Env, args: &Args) -> Result<Layout, RenderError> {
    let p = Params::read(args);
    let default = format!("{}/gtm.dat", env.dir);
    let mut gde = vec![format!("change -segment DEFAULT -file_name={default}")];
    let mut files = vec![("DEFAULT".to_owned(), default)];
    let mut regions = Vec::new();
    for region in p.regions.list().unwrap_or_default() {
        let name = region.to_string().to_uppercase();
        check_name("regions", &name, 31)?;
        if name == "DEFAULT" || regions.contains(&name) {
            return Err(RenderError::new(
                p.regions.name(),
                format!("`{name}` is given twice"),
            ));
        }
        let file = format!("{}/{}.dat", env.dir, name.to_lowercase());
        gde.push(format!("add -segment {name} -file_name={file}"));
        gde.push(format!("add -region {name} -dynamic_segment={name}"));
        files.push((name.clone(), file));
        regions.push(name);
    }
    for (global, region) in p.names.map().into_iter().flatten() {
        let region = region.to_string().to_uppercase();
        let valid = global.starts_with(|c: char| c == '%' || c.is_ascii_alphabetic())
            && global.chars().skip(1).all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '*'
                    || c == '('
                    || c == ')'
                    || c == ':'
                    || c == ','
            });
        if !valid {
            return Err(RenderError::new(
                p.names.name(),
                format!("`{global}` is not a global name"),
            ));
        }
        if region != "DEFAULT" && !regions.contains(&region) {
            return Err(RenderError::new(
                p.names.name(),
                format!("`{global}` maps to `{region}`, which is not in `regions`"),
            ));
        }
        gde.push(format!("add -name {global} -region={region}"));
    }
    gde.push("exit".to_owned());
    Ok(Layout { gde, files })
}

impl Module for DatabaseCreateModule {
    fn name(&self) -> &'static str {
        "gtm.database_create"
    }

    fn description(&self) -> &'static str {
        "Create the global directory (GDE) and the database files (mupip create) of an instance"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let env = Env::new(args)?;
        let Layout { gde, files } = layout(&env, args)?;
        let gde_words: Vec<String> = gde.iter().map(|l| quote(l)).collect();
        let mut body = vec![
            "GDE() { printf '%s\\n' \"$@\" | \"$gtm_dist/mumps\" -run GDE; }".to_owned(),
            "rb_changed=".to_owned(),
            format!(
                "if [ ! -f \"$gtmgbldir\" ]; then rb_run GDE {}; rb_changed=1; fi",
                gde_words.join(" ")
            ),
        ];
        for (region, file) in &files {
            body.push(format!(
                "if [ ! -f {} ]; then {}; rb_changed=1; fi",
                quote(file),
                run("mupip", ["create", &format!("-region={region}")])
            ));
        }
        body.push("[ -n \"$rb_changed\" ] || rb_unchanged".to_owned());
        Ok(one(env.command(self.name(), &lines(&body))))
    }

    fn check(&self, args: &Args) -> Result<Option<Vec<Operation>>, RenderError> {
        let env = Env::new(args)?;
        let Layout { files, .. } = layout(&env, args)?;
        let mut tests = vec!["[ -f \"$gtmgbldir\" ]".to_owned()];
        tests.extend(files.iter().map(|(_, f)| format!("[ -f {} ]", quote(f))));
        let body = format!("if {}; then exit 0; else exit 1; fi", tests.join(" && "));
        Ok(Some(one(env.probe(self.name(), 1, &body))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;
    use crate::value::Value;

    #[test]
    fn renders_gde_commands_and_one_create_per_missing_file() {
        let raw = [
            ("dir", s("/srv/gtm/B")),
            ("instance", s("B")),
            ("regions", Value::List(vec![s("areg")])),
            (
                "names",
                Value::Map([("A*".to_owned(), s("AREG"))].into_iter().collect()),
            ),
        ];
        let cmd = &remotes(&DatabaseCreateModule, &raw)[0];
        assert!(
            cmd.script.contains(
                "rb_run GDE 'change -segment DEFAULT -file_name=/srv/gtm/B/gtm.dat' \
             'add -segment AREG -file_name=/srv/gtm/B/areg.dat' \
             'add -region AREG -dynamic_segment=AREG' 'add -name A* -region=AREG' exit"
            ),
            "{}",
            cmd.script
        );
        assert!(cmd.script.contains(
            "if [ ! -f /srv/gtm/B/areg.dat ]; then rb_run \"$gtm_dist/mupip\" create -region=AREG; rb_changed=1; fi"
        ));
        let probe = check_probe(&DatabaseCreateModule, &raw);
        assert!(probe.script.ends_with(
            "if [ -f \"$gtmgbldir\" ] && [ -f /srv/gtm/B/gtm.dat ] && [ -f /srv/gtm/B/areg.dat ]; then exit 0; else exit 1; fi"
        ));
    }

    #[test]
    fn refuses_unknown_regions_and_bad_names() {
        let a = args(
            &DatabaseCreateModule,
            &[
                ("dir", s("/x")),
                ("instance", s("A")),
                (
                    "names",
                    Value::Map([("A*".to_owned(), s("NOPE"))].into_iter().collect()),
                ),
            ],
        );
        assert_eq!(
            DatabaseCreateModule.render(&a).expect_err("unknown").arg,
            Some("names")
        );
        let a = args(
            &DatabaseCreateModule,
            &[
                ("dir", s("/x")),
                ("instance", s("A")),
                ("regions", Value::List(vec![s("a;b")])),
            ],
        );
        assert_eq!(
            DatabaseCreateModule.render(&a).expect_err("bad").arg,
            Some("regions")
        );
    }
}
