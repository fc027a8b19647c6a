//! `gtm.journal`: turn journaling on with before images and cut the back link.
//!
//! Seed, "Rolling Software Upgrade" and "Changing the global directory": "Cut the back links to
//! the prior generation journal files with a command like: `mupip set
//! -journal=on,before_images,filename=B/gtm.mjl -noprevjnlfile -region "DEFAULT"`". Every run
//! starts a new journal generation, so it is not idempotent and has no check.

use std::fmt::Write as _;
use std::sync::LazyLock;

use super::{Env, check_name, one, run, with_env};
use crate::args::Args;
use crate::module::{Module, Operation, RenderError};
use crate::param::{ParamSpec, ParamType};
use crate::value::Value;

#[derive(Debug, Clone, Copy, Default)]
pub struct JournalModule;

crate::params! {
    struct Params {

        region: ParamSpec::optional(ParamType::String, "The region, or `*` for all")
            .with_default(Value::Str("DEFAULT".into())),
        file: ParamSpec::optional(ParamType::Path,
            "The journal file (filename=); only with one region",
        ),
        before_images: ParamSpec::optional(ParamType::Bool,
            "Before-image journaling (needed for rollback)",
        )
        .with_default(Value::Bool(true)),
        noprevjnlfile: ParamSpec::optional(ParamType::Bool,
            "Cut the link to the previous journal generation",
        )
        .with_default(Value::Bool(true)),
    }
}

static PARAMS: LazyLock<Vec<ParamSpec>> = LazyLock::new(|| with_env(Params::specs()));

impl Module for JournalModule {
    fn name(&self) -> &'static str {
        "gtm.journal"
    }

    fn description(&self) -> &'static str {
        "Start a new journal generation (mupip set -journal=on,before_images[,filename] -noprevjnlfile)"
    }

    fn params(&self) -> &[ParamSpec] {
        &PARAMS
    }

    fn idempotent(&self) -> bool {
        false
    }

    fn render(&self, args: &Args) -> Result<Vec<Operation>, RenderError> {
        let p = Params::read(args);
        let env = Env::new(args)?;
        let region = p.region.str().unwrap_or_else(|| "DEFAULT".into());
        if region != "*" {
            check_name("region", &region, 31)?;
        }
        let mut journal = String::from("-journal=enable,on,");
        journal.push_str(if p.before_images.bool() == Some(false) {
            "nobefore_images"
        } else {
            "before_images"
        });
        if let Some(file) = p.file.str() {
            if region == "*" {
                return Err(RenderError::new(
                    p.file.name(),
                    "one journal file cannot serve every region",
                ));
            }
            let _ = write!(journal, ",filename={file}");
        }
        let mut words = vec!["set".to_owned(), journal];
        if p.noprevjnlfile.bool() != Some(false) {
            words.push("-noprevjnlfile".to_owned());
        }
        words.extend(["-region".to_owned(), region]);
        Ok(one(env.command(self.name(), &run("mupip", &words))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gtm::testing::*;

    #[test]
    fn renders_the_seed_command() {
        let cmd = &remotes(
            &JournalModule,
            &[
                ("dir", s("/g/B")),
                ("instance", s("B")),
                ("file", s("/g/B/gtm.mjl")),
            ],
        )[0];
        assert!(cmd.script.ends_with(
            "rb_run \"$gtm_dist/mupip\" set -journal=enable,on,before_images,filename=/g/B/gtm.mjl -noprevjnlfile -region DEFAULT"
        ));
    }
}
