//! `adi preview-pdf`: draws one page of a PDF read from standard input, for the node that runs
//! it in a process of its own (`adi_node::preview`). Before it reads a byte it bounds its own
//! address space and processor time, and forbids itself to open any file or socket (it keeps
//! only its standard streams): a document built to exhaust or subvert a parser gets no further
//! than this process.

use std::io::{Read, Write};
use std::process::ExitCode;

use adi_node::preview::{Header, EXIT_NO_PAGE, EXIT_UNREADABLE};
use adi_preview::{Bounds, Failure};
use rustix::process::{setrlimit, Resource, Rlimit};

/// What the node asks (`adi_node::preview::Ask::args`).
#[derive(clap::Args)]
pub struct PreviewArgs {
    /// The page to draw, from 1; 0 counts the pages.
    #[arg(long)]
    pub page: usize,
    #[arg(long)]
    pub width_px: u32,
    #[arg(long)]
    pub pixels_max: u64,
    #[arg(long)]
    pub seconds_max: u64,
    #[arg(long)]
    pub memory_bytes_max: u64,
    #[arg(long)]
    pub input_bytes_max: u64,
}

fn bound(resource: Resource, most: u64) -> Result<(), String> {
    setrlimit(resource, Rlimit { current: Some(most), maximum: Some(most) })
        .map_err(|e| format!("cannot bound {resource:?}: {e}"))
}

fn fail(status: i32, why: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "{}", why.replace('\n', " "));
    ExitCode::from(status as u8)
}

pub fn run(args: &PreviewArgs) -> ExitCode {
    let bounded = bound(Resource::As, args.memory_bytes_max)
        .and_then(|()| bound(Resource::Cpu, args.seconds_max.max(1)))
        .and_then(|()| bound(Resource::Nofile, 3));
    if let Err(why) = bounded {
        return fail(1, &why);
    }
    let mut document = Vec::new();
    let read = std::io::stdin().lock().take(args.input_bytes_max.saturating_add(1)).read_to_end(&mut document);
    if let Err(e) = read {
        return fail(EXIT_UNREADABLE, &format!("cannot read the document: {e}"));
    }
    if document.len() as u64 > args.input_bytes_max {
        return fail(EXIT_UNREADABLE, &format!("the document is longer than {} bytes", args.input_bytes_max));
    }
    // A renderer that panics on some document is a document refused, not a crash report.
    std::panic::set_hook(Box::new(|_| {}));
    let bounds = Bounds { width_px: args.width_px, pixels_max: args.pixels_max };
    let page = args.page;
    let drawn = std::panic::catch_unwind(move || {
        if page == 0 {
            adi_preview::pages(document).map(|pages| (Header { pages, width_px: 0, height_px: 0 }, Vec::new()))
        } else {
            adi_preview::draw(document, page, bounds)
                .map(|d| (Header { pages: d.pages, width_px: d.width_px, height_px: d.height_px }, d.png))
        }
    });
    let mut out = std::io::stdout().lock();
    let mut answer = |header: &Header, png: &[u8]| -> std::io::Result<()> {
        let line = serde_json::to_string(header).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
        out.write_all(png)?;
        out.flush()
    };
    match drawn {
        Ok(Ok((header, png))) => match answer(&header, &png) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, &format!("cannot write the page: {e}")),
        },
        Ok(Err(Failure::NoPage { page, pages })) => {
            let _ = answer(&Header { pages, width_px: 0, height_px: 0 }, &[]);
            fail(EXIT_NO_PAGE, &Failure::NoPage { page, pages }.to_string())
        }
        Ok(Err(failure)) => fail(EXIT_UNREADABLE, &failure.to_string()),
        Err(_) => fail(EXIT_UNREADABLE, "the renderer failed on this document"),
    }
}
