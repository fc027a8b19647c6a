//! `lab up --platform NAME`: a lab whose inventory has what the platform's built-in runbooks
//! need, so that `runbook apply new-mirror -i .runbook/lab/inventory.yaml` (then `switchover`,
//! ...) runs as written. GT.M is the one platform that runs here for real (IRIS, HealthShare
//! and IBM Connections cannot be installed; their tests use recording stand-ins).

use super::LabConfig;

/// The platforms a lab can be made for.
pub const PLATFORMS: &[&str] = &["gtm"];

impl LabConfig {
    /// Adds the platform's inventory variables, and its roles when none were given: for GT.M,
    /// `platform`, `gtm_dir` (`{root}/gtm`, an instance directory in each host's tree),
    /// `gtm_instance` (the host name in capitals: `A`, `B`, ...) and `repl_port` (a free port),
    /// and the roles `originating` (the first host), `replicating` (the second) and
    /// `supplementary` (a third, when there is one). Variables given with `--var` win.
    ///
    /// # Errors
    /// A platform the lab cannot make.
    pub fn platform(mut self, name: &str) -> Result<Self, String> {
        let (vars, roles): (&[(&str, &str)], &[&str]) = match name {
            "gtm" => (
                &[
                    ("platform", "gtm"),
                    ("gtm_dir", "{root}/gtm"),
                    ("gtm_instance", "{NAME}"),
                    ("repl_port", "{free_port}"),
                ],
                &["originating", "replicating", "supplementary"],
            ),
            other => {
                return Err(format!(
                    "a lab cannot be made for platform `{other}` (only {}: the others' software cannot be installed here)",
                    PLATFORMS.join(", ")
                ));
            }
        };
        for (var, template) in vars {
            if !self.vars.iter().any(|(v, _)| v == var) {
                self.vars.push(((*var).to_owned(), (*template).to_owned()));
            }
        }
        if self.roles.is_empty() {
            let pairs: Vec<(String, String)> = self
                .hosts
                .iter()
                .zip(roles)
                .map(|(h, r)| (h.clone(), (*r).to_owned()))
                .collect();
            self.roles = pairs;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtm_gives_the_variables_and_roles_the_runbooks_need_and_given_ones_win() {
        let c = LabConfig::new("/tmp/x", 2)
            .var("repl_port", "4000")
            .platform("gtm")
            .expect("gtm");
        let var = |n: &str| c.vars.iter().find(|(v, _)| v == n).map(|(_, t)| t.as_str());
        assert_eq!(var("gtm_instance"), Some("{NAME}"));
        assert_eq!(var("repl_port"), Some("4000"));
        assert_eq!(var("platform"), Some("gtm"));
        assert_eq!(
            c.roles,
            [
                ("a".into(), "originating".into()),
                ("b".into(), "replicating".into())
            ]
        );
        let mine = LabConfig::new("/tmp/x", 2)
            .role("b", "originating")
            .platform("gtm");
        assert_eq!(
            mine.expect("gtm").roles,
            [("b".into(), "originating".into())]
        );
        assert!(LabConfig::new("/tmp/x", 2).platform("iris").is_err());
    }
}
