//! Shell completions and the manual page, generated from the clap definitions in `args.rs` so
//! that they cannot drift from the command line they describe.

use clap::CommandFactory as _;

use super::args::Cli;

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "runbook", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page of `runbook` (roff), with a section per subcommand and the exit codes.
pub fn man_page() -> std::io::Result<String> {
    let command = Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    subcommands(&command, "runbook", &mut out)?;
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A section per subcommand (a sub-heading per option group), nested subcommands after their
/// parent (`runbook lab up`).
fn subcommands(parent: &clap::Command, path: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
    for sub in parent.get_subcommands().filter(|s| s.get_name() != "help") {
        let path = format!("{path} {}", sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", path.to_uppercase()).as_bytes());
        let page = clap_mangen::Man::new(sub.clone().bin_name(path.clone()));
        let mut body = Vec::new();
        page.render_synopsis_section(&mut body)?;
        page.render_description_section(&mut body)?;
        page.render_options_section(&mut body)?;
        page.render_extra_section(&mut body)?;
        // The sub-page's own `.SH` headings become sub-headings of this section.
        let body = String::from_utf8_lossy(&body).replace(".SH ", ".SS ");
        out.extend_from_slice(body.as_bytes());
        subcommands(sub, &path, out)?;
    }
    Ok(())
}
