//! Terminal output: colour on a terminal, plain text otherwise (anstream strips the styles when
//! stdout is not a terminal, and honours `NO_COLOR` / `CLICOLOR_FORCE`).

use std::fmt::Display;

use owo_colors::OwoColorize;

/// Writes the simulator's lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ui;

impl Ui {
    /// A title line.
    pub fn title(&self, text: impl Display) {
        anstream::println!("{}", text.bold());
    }

    /// The header of one phase.
    pub fn phase(&self, n: u8, of: u8, name: &str, what: &str) {
        anstream::println!();
        anstream::println!("{} {}  {}", format!("Phase {n}/{of}").bold().cyan(), name.bold(), what.dimmed());
    }

    /// A checked step that passed.
    pub fn ok(&self, text: impl Display) {
        anstream::println!("  {} {text}", "✓".green().bold());
    }

    /// Detail under a step.
    pub fn info(&self, text: impl Display) {
        anstream::println!("    {}", text.dimmed());
    }

    /// A plain note.
    pub fn note(&self, text: impl Display) {
        anstream::println!("  {text}");
    }

    /// A step that failed.
    pub fn fail(&self, step: impl Display, detail: impl Display) {
        anstream::println!("  {} {} {detail}", "✗".red().bold(), format!("{step}:").red().bold());
    }

    /// The closing verdict.
    pub fn verdict(&self, passed: bool, text: impl Display) {
        anstream::println!();
        if passed {
            anstream::println!("{} {text}", "PASS".green().bold());
        } else {
            anstream::println!("{} {text}", "FAIL".red().bold());
        }
    }
}
