//! Previews of PDF files attached to messages: a page drawn as a PNG image by a program in a
//! process of its own, so that no browser parses a document a peer sent, and a document that
//! would exhaust a parser exhausts only that process.
//!
//! The node runs the program (`adi preview-pdf`, [`Previewer::this_program`]) once for each page
//! asked, with the document on its standard input and the bounds of [`Ask`] as its arguments; it
//! bounds its own memory, processor time and files before it reads a byte, and writes a
//! [`Header`] line and then the page's PNG. The node waits at most twice `preview_seconds_max`,
//! reads at most what the bounds allow, and draws at most `preview_concurrency_max` pages at once.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// The program that draws pages, and the arguments that come before the bounds.
#[derive(Clone, Debug)]
pub struct Previewer {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl Previewer {
    /// The running program itself as `adi preview-pdf`: what `adi serve` uses.
    pub fn this_program() -> std::io::Result<Previewer> {
        Ok(Previewer { program: std::env::current_exe()?, args: vec!["preview-pdf".into()] })
    }
}

/// What the drawing process writes first: one line of JSON, then the page's PNG (none when
/// only the pages were counted).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// How many pages the document has.
    pub pages: usize,
    pub width_px: u32,
    pub height_px: u32,
}

/// The exit status of a drawing process asked for a page the document does not have (its header,
/// written first, says how many it has).
pub const EXIT_NO_PAGE: i32 = 3;
/// The exit status of a drawing process that could not read the document; its standard error
/// says why, in one line.
pub const EXIT_UNREADABLE: i32 = 2;

/// What a drawing process is asked: a page (0: only count them) and its bounds.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub page: usize,
    pub width_px: u32,
    pub pixels_max: u64,
    pub seconds_max: u64,
    pub memory_bytes_max: u64,
    pub input_bytes_max: u64,
}

impl Ask {
    /// The arguments that carry it, as `adi preview-pdf` takes them.
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--page={}", self.page),
            format!("--width-px={}", self.width_px),
            format!("--pixels-max={}", self.pixels_max),
            format!("--seconds-max={}", self.seconds_max),
            format!("--memory-bytes-max={}", self.memory_bytes_max),
            format!("--input-bytes-max={}", self.input_bytes_max),
        ]
    }

    /// The most bytes its answer may take: the header and a PNG no larger than the page's pixels
    /// unpacked (PNG's own framing included).
    fn answer_bytes_max(&self) -> usize {
        let pixels = usize::try_from(self.pixels_max).unwrap_or(usize::MAX);
        pixels.saturating_mul(4).saturating_add(1024 * 1024)
    }
}

/// Why a page was not drawn.
#[derive(Debug, PartialEq, Eq)]
pub enum PreviewError {
    /// This node has no drawing program.
    Unavailable,
    /// The document has `pages` pages.
    NoPage { pages: usize },
    /// The document is not a PDF the program can read, or the program failed on it: why.
    Unreadable(String),
    /// The program passed its time or memory and was stopped.
    Exhausted(String),
}

impl std::fmt::Display for PreviewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreviewError::Unavailable => write!(f, "this node draws no previews of PDF files"),
            PreviewError::NoPage { pages } => write!(f, "the document has {pages} page(s)"),
            PreviewError::Unreadable(why) => write!(f, "the document cannot be drawn: {why}"),
            PreviewError::Exhausted(why) => write!(f, "drawing the page was stopped: {why}"),
        }
    }
}

/// The node's drawing program, if any, the turns it gives out, and the last document drawn.
pub struct Previews {
    previewer: Option<Previewer>,
    turns: Semaphore,
    /// The last document put together to be drawn (its message and SHA-256): a preview asks for
    /// its pages one after another, and each would otherwise read and open every chunk again.
    last: std::sync::Mutex<Option<KeptDocument>>,
}

/// A document kept for the next pages of its preview: its message, its SHA-256 and its bytes.
type KeptDocument = (adi_wire::EnvelopeHash, [u8; 32], std::sync::Arc<Vec<u8>>);

impl Previews {
    pub fn new(previewer: Option<Previewer>, concurrency_max: usize) -> Previews {
        Previews { previewer, turns: Semaphore::new(concurrency_max.max(1)), last: std::sync::Mutex::new(None) }
    }

    /// The document last kept, if it is file `file` of `message`.
    pub fn last_document(&self, message: &adi_wire::EnvelopeHash, file: &[u8; 32]) -> Option<std::sync::Arc<Vec<u8>>> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().filter(|(m, f, _)| m == message && f == file).map(|(_, _, bytes)| bytes.clone())
    }

    /// Keeps a document put together, in place of the one kept before.
    pub fn keep_document(&self, message: adi_wire::EnvelopeHash, file: [u8; 32], bytes: std::sync::Arc<Vec<u8>>) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((message, file, bytes));
    }

    /// Whether this node draws previews at all.
    pub fn available(&self) -> bool {
        self.previewer.is_some()
    }

    /// Runs the drawing program on `document` for `ask`, waiting for a turn first: its header and
    /// the page's PNG (empty when only counting).
    pub async fn draw(&self, document: &[u8], ask: Ask) -> Result<(Header, Vec<u8>), PreviewError> {
        let previewer = self.previewer.as_ref().ok_or(PreviewError::Unavailable)?;
        let _turn = self.turns.acquire().await.map_err(|_| PreviewError::Unavailable)?;
        let mut child = tokio::process::Command::new(&previewer.program)
            .args(&previewer.args)
            .args(ask.args())
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| PreviewError::Unreadable(format!("cannot start the drawing program: {e}")))?;
        let (Some(mut input), Some(mut output), Some(mut errors)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(PreviewError::Unreadable("the drawing program has no pipes".into()));
        };
        let most = ask.answer_bytes_max();
        let talk = async {
            // The program reads the whole document before it answers; one that stops reading
            // early (it refused the document) closes the pipe, which is no failure here.
            let feed = async {
                let _ = input.write_all(document).await;
                drop(input);
            };
            let mut answer = Vec::new();
            let mut said = Vec::new();
            let read = async {
                let read = (&mut output).take(most as u64 + 1).read_to_end(&mut answer).await;
                let _ = (&mut errors).take(4096).read_to_end(&mut said).await;
                read
            };
            let ((), read) = tokio::join!(feed, read);
            let status = child.wait().await;
            (read, status, answer, said)
        };
        let wait = Duration::from_secs(ask.seconds_max.saturating_mul(2).max(1));
        let (read, status, answer, said) = match tokio::time::timeout(wait, talk).await {
            Ok(done) => done,
            Err(_) => {
                return Err(PreviewError::Exhausted(format!("it took longer than {} s", wait.as_secs())));
            }
        };
        let said = String::from_utf8_lossy(&said).lines().next().unwrap_or_default().trim().to_string();
        read.map_err(|e| PreviewError::Unreadable(format!("cannot read the drawing program's answer: {e}")))?;
        let status = status.map_err(|e| PreviewError::Unreadable(format!("the drawing program: {e}")))?;
        if answer.len() > most {
            return Err(PreviewError::Exhausted(format!("its answer is longer than {most} bytes")));
        }
        let header = answer
            .iter()
            .position(|b| *b == b'\n')
            .and_then(|end| serde_json::from_slice::<Header>(&answer[..end]).ok().map(|h| (h, end + 1)));
        match status.code() {
            Some(0) => {
                let (header, start) = header
                    .ok_or_else(|| PreviewError::Unreadable("the drawing program's answer has no header".into()))?;
                let png = answer[start..].to_vec();
                if ask.page > 0 && !png.starts_with(b"\x89PNG\r\n\x1a\n") {
                    return Err(PreviewError::Unreadable("the drawing program's answer is not a PNG".into()));
                }
                Ok((header, png))
            }
            Some(EXIT_NO_PAGE) => Err(PreviewError::NoPage { pages: header.map(|(h, _)| h.pages).unwrap_or(0) }),
            Some(EXIT_UNREADABLE) => Err(PreviewError::Unreadable(said)),
            Some(code) => Err(PreviewError::Unreadable(format!("the drawing program failed ({code}): {said}"))),
            None => Err(PreviewError::Exhausted(format!(
                "the drawing program was stopped by a signal, past its memory ({} bytes) or time ({} s)",
                ask.memory_bytes_max, ask.seconds_max
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Previews;
    use adi_wire::EnvelopeHash;
    use std::sync::Arc;

    #[test]
    fn the_last_document_is_kept_for_its_own_message_and_file_only() {
        let p = Previews::new(None, 1);
        let (m, n) = (EnvelopeHash([1; 32]), EnvelopeHash([2; 32]));
        assert!(p.last_document(&m, &[7; 32]).is_none());
        p.keep_document(m, [7; 32], Arc::new(b"first".to_vec()));
        assert_eq!(p.last_document(&m, &[7; 32]).as_deref().map(Vec::as_slice), Some(&b"first"[..]));
        assert!(p.last_document(&m, &[8; 32]).is_none(), "another file of the message");
        assert!(p.last_document(&n, &[7; 32]).is_none(), "the same file of another message");
        p.keep_document(n, [7; 32], Arc::new(b"second".to_vec()));
        assert!(p.last_document(&m, &[7; 32]).is_none(), "only the last is kept");
    }
}
