//! `adi completions` (a shell's completion script) and `adi man` (the manual pages): both made
//! from the command line's own definition, so that they name every command and option there is.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use clap_complete::Shell;
use clap_mangen::Man;

/// Prints the completion script of `shell` for the command line `cli`.
pub fn completions(mut cli: clap::Command, shell: Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "adi", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        // A closed pipe (`adi completions bash | head`) ends the command quietly.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written.context("cannot write the completion script"),
    }
}

/// Writes the manual pages of the command line `cli` into `out` (made if need be): `adi.1`, and
/// a page for each subcommand, named by its path (`adi-serve.1`, `adi-roster-show.1`).
pub fn man(cli: clap::Command, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot make the folder {}", out.display()))?;
    // Built, each subcommand knows its path (`adi roster show`) and the page's name from it.
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let mut written = 0;
    write_pages(&cli, out, &mut written)?;
    out!("wrote {written} manual pages to {}", out.display());
    Ok(())
}

/// Writes the page of `command` and of each subcommand under it, counting them in `written`.
fn write_pages(command: &clap::Command, out: &Path, written: &mut usize) -> anyhow::Result<()> {
    let source = format!("adi {}", env!("CARGO_PKG_VERSION"));
    let page = Man::new(command.clone()).source(source);
    let mut text = Vec::new();
    page.render(&mut text).with_context(|| format!("cannot render the manual page of {}", command.get_name()))?;
    let file = out.join(page.get_filename());
    std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    *written += 1;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        write_pages(sub, out, written)?;
    }
    Ok(())
}
