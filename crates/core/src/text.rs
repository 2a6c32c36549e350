//! The rule for human text that crosses the network, and how its words are counted.
//!
//! Every text a person writes for another member (a message's subject, caveat and body, a line's
//! title, a decision's text, a reason, a translation, an operator's name) is checked by
//! [`check_text`], on the operator's request and on a peer's envelope alike, so that what reaches
//! an officer's terminal or console cannot steer it: no escape sequence, no carriage return or
//! newline that forges a line, no bidirectional control that reorders what is shown, and no
//! invisible character that hides or smuggles text.
//!
//! A field is one of two kinds ([`TextKind`]):
//!
//! - one line (subjects, caveats, titles, names): refuses every control character (Unicode
//!   category Cc: C0, DEL and C1, tab and line feed among them), the line and paragraph
//!   separators U+2028 and U+2029, and every format character (category Cf): the bidirectional
//!   embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), the marks U+200E, U+200F
//!   and U+061C, the zero-width space, joiners and word joiner, the soft hyphen, the byte-order
//!   mark, tag characters and the rest;
//! - several lines (bodies, decision texts, translations, reasons): the same, except that line
//!   feed and tab break the text, and that the marks U+200E, U+200F and U+061C and the invisible
//!   characters some scripts need between or inside their words (the zero-width space of Thai,
//!   Khmer and Myanmar, the zero-width non-joiner and joiner of Indic scripts and emoji, the word
//!   joiner, the soft hyphen) are allowed. The bidirectional embeddings, overrides and isolates
//!   stay refused: the marks suffice to place punctuation in text of mixed direction, and an
//!   override shows text in an order other than the one signed.
//!
//! [`count_words`] counts words by Unicode word boundaries (UAX #29), so that words joined by an
//! invisible character still count one by one.

use unicode_segmentation::UnicodeSegmentation;

use crate::error::CoreError;

/// The shape of text a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// One line: a subject, caveat, line title or operator's name.
    Line,
    /// Prose that may run over several lines: a body, decision text, translation or reason.
    Lines,
}

/// Why `c` may not stand in a text of `kind`, or `None` if it may.
pub fn refusal(c: char, kind: TextKind) -> Option<&'static str> {
    let lines = kind == TextKind::Lines;
    match c {
        '\n' | '\t' if lines => None,
        '\r' => Some("a carriage return (lines break with a line feed alone)"),
        '\n' => Some("a line feed, in a field of one line"),
        '\u{2028}' | '\u{2029}' => Some("a line or paragraph separator"),
        c if c.is_control() => Some("a control character"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            Some("a bidirectional control, which shows text in another order than written")
        }
        '\u{200e}' | '\u{200f}' | '\u{061c}' if lines => None,
        '\u{200e}' | '\u{200f}' | '\u{061c}' => Some("a direction mark, allowed in texts of several lines only"),
        c if is_word_joiner(c) && lines => None,
        c if is_word_joiner(c) => Some("an invisible character, allowed in texts of several lines only"),
        c if is_format(c) => Some("an invisible format character"),
        _ => None,
    }
}

/// A text from a peer's node that no person wrote and nobody signed (the reason a peer gives for
/// refusing or deferring an envelope), made fit to show: each character the rule for one line
/// refuses becomes U+FFFD, and past `chars_max` characters the text is cut with an ellipsis. A
/// peer running modified code can write anything there; it reaches the officer only so.
pub fn clean_line(value: &str, chars_max: usize) -> String {
    let mut out: String = value
        .chars()
        .take(chars_max)
        .map(|c| if refusal(c, TextKind::Line).is_some() { '\u{fffd}' } else { c })
        .collect();
    if value.chars().nth(chars_max).is_some() {
        out.push('…');
    }
    out
}

/// Checks a text against the rule for its kind; the error names `field` and the first character
/// refused, by its code point (the character itself is never echoed).
pub fn check_text(field: &str, value: &str, kind: TextKind) -> Result<(), CoreError> {
    let found = value.chars().enumerate().find_map(|(i, c)| refusal(c, kind).map(|why| (i, c, why)));
    match found {
        None => Ok(()),
        Some((i, c, why)) => Err(CoreError::invalid_field(
            "bad_character",
            field.to_string(),
            format!("character {} is U+{:04X}, {why}", i + 1, u32::from(c)),
        )),
    }
}

/// The number of words in a text, by Unicode word boundaries (UAX #29): whitespace, punctuation
/// and every invisible format character separate words (a zero-width space, a joiner, a word
/// joiner or a soft hyphen between two words leaves them two), and each Han ideograph or hiragana
/// counts as a word, as word processors count Chinese and Japanese. Thai, Lao, Khmer and Myanmar
/// are written without spaces between words, and their boundaries need a dictionary: there, a
/// run of letters that nothing separates counts as one word.
pub fn count_words(text: &str) -> usize {
    text.split(|c: char| c.is_whitespace() || is_format(c))
        .map(|piece| {
            let mut words = 0;
            // Where the last word ended, if it was of a script written without spaces.
            let mut run_end = None;
            for (at, word) in piece.unicode_word_indices() {
                let unspaced = word.chars().next().is_some_and(is_unspaced_script);
                if !(unspaced && run_end == Some(at)) {
                    words += 1;
                }
                run_end = unspaced.then_some(at + word.len());
            }
            words
        })
        .sum()
}

/// The invisible characters that scripts and emoji use between or inside words: the zero-width
/// space, non-joiner and joiner, the word joiner and the soft hyphen.
fn is_word_joiner(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}')
}

/// Unicode's format characters (general category Cf): invisible, they change how text around
/// them is shown or joined.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061c}'
            | '\u{06dd}'
            | '\u{070f}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// Scripts written without spaces between words, whose word boundaries UAX #29 leaves to a
/// dictionary (line-break class SA): Thai, Lao, Myanmar, Khmer, and the Tai scripts.
fn is_unspaced_script(c: char) -> bool {
    matches!(
        c,
        '\u{0e00}'..='\u{0eff}'
            | '\u{1000}'..='\u{109f}'
            | '\u{1780}'..='\u{17ff}'
            | '\u{1950}'..='\u{19df}'
            | '\u{19e0}'..='\u{19ff}'
            | '\u{1a20}'..='\u{1aaf}'
            | '\u{a9e0}'..='\u{a9ff}'
            | '\u{aa60}'..='\u{aadf}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(value: &str, kind: TextKind) -> Option<String> {
        check_text("subject", value, kind).err().map(|e| {
            assert_eq!((e.code, e.field.as_deref()), ("bad_character", Some("subject")), "{e:?}");
            assert!(e.message.starts_with("subject: character "), "{}", e.message);
            e.message
        })
    }

    #[test]
    fn plain_text_of_any_script_passes_both_kinds() {
        for text in [
            "Vessel sighted near Scarborough Shoal, 12 nm",
            "南海 事件报告",
            "สวัสดีครับ",
            "ខ្ញុំ",
            "မင်္ဂလာပါ",
            "नमस्ते",
            "Bản tin khẩn",
            "한국어 보고",
            "مرحبا",
            "",
        ] {
            assert_eq!(refused(text, TextKind::Line), None, "{text}");
            assert_eq!(refused(text, TextKind::Lines), None, "{text}");
        }
    }

    #[test]
    fn control_characters_are_refused_except_line_feed_and_tab_in_multi_line_texts() {
        for c in ['\u{0}', '\u{7}', '\u{8}', '\u{1b}', '\r', '\u{7f}', '\u{80}', '\u{85}', '\u{9b}', '\u{9f}'] {
            let text = format!("a{c}b");
            let message = refused(&text, TextKind::Line).unwrap_or_else(|| panic!("{c:?} passed as a line"));
            assert!(message.contains(&format!("U+{:04X}", u32::from(c))), "{message}");
            assert!(message.starts_with("subject: character 2 is"), "{message}");
            assert!(refused(&text, TextKind::Lines).is_some(), "{c:?} passed in a multi-line text");
        }
        for c in ['\n', '\t'] {
            let text = format!("a{c}b");
            assert!(refused(&text, TextKind::Line).is_some(), "{c:?} passed as a line");
            assert_eq!(refused(&text, TextKind::Lines), None, "{c:?}");
        }
        // An escape sequence that would clear the terminal; the message never echoes it.
        let message = refused("\u{1b}[2J", TextKind::Lines).unwrap();
        assert!(message.contains("U+001B") && !message.contains('\u{1b}'), "{message}");
    }

    #[test]
    fn bidirectional_controls_are_refused_everywhere_and_marks_outside_multi_line_texts() {
        let controls = ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}');
        for c in controls.chain(['\u{2028}', '\u{2029}']) {
            let text = format!("alarm {c}txet");
            assert!(refused(&text, TextKind::Line).is_some(), "{c:?}");
            assert!(refused(&text, TextKind::Lines).is_some(), "{c:?}");
        }
        for c in ['\u{200e}', '\u{200f}', '\u{061c}'] {
            let text = format!("a{c}b");
            assert!(refused(&text, TextKind::Line).is_some(), "{c:?}");
            assert_eq!(refused(&text, TextKind::Lines), None, "{c:?}");
        }
    }

    #[test]
    fn invisible_characters_are_refused_in_one_line_and_hidden_ones_everywhere() {
        for c in ['\u{00ad}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}'] {
            let text = format!("a{c}b");
            assert!(refused(&text, TextKind::Line).is_some(), "{c:?}");
            assert_eq!(refused(&text, TextKind::Lines), None, "{c:?}");
        }
        // Tag characters carry hidden ASCII; the others hide or annotate text.
        for c in ['\u{feff}', '\u{2062}', '\u{206a}', '\u{fff9}', '\u{e0001}', '\u{e0041}', '\u{180e}'] {
            let text = format!("a{c}b");
            assert!(refused(&text, TextKind::Line).is_some(), "{c:?}");
            assert!(refused(&text, TextKind::Lines).is_some(), "{c:?}");
        }
        let m = refused("ok\u{e0041}", TextKind::Lines).unwrap();
        assert!(m.contains("character 3 is U+E0041, an invisible format character"), "{m}");
    }

    #[test]
    fn a_peers_reason_is_cleaned_and_bounded() {
        assert_eq!(clean_line("line unknown here", 100), "line unknown here");
        assert_eq!(clean_line("a\u{1b}[2Jb\nc\u{202e}d", 100), "a\u{fffd}[2Jb\u{fffd}c\u{fffd}d");
        assert_eq!(clean_line("abcdef", 3), "abc…");
        assert_eq!(clean_line("abc", 3), "abc");
        assert!(check_text("reason", &clean_line("\u{7}\r\u{2066}x\u{200b}", 10), TextKind::Line).is_ok());
    }

    #[test]
    fn words_are_counted_by_unicode_boundaries_and_invisible_separators() {
        assert_eq!(count_words(""), 0);
        assert_eq!(count_words("  two words\n"), 2);
        assert_eq!(count_words("word,word;word"), 3);
        assert_eq!(count_words("don't e-mail 3.14"), 4);
        for joiner in ['\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{00ad}', '\u{feff}', '\u{2063}'] {
            let text = vec!["word"; 5000].join(&joiner.to_string());
            assert_eq!(count_words(&text), 5000, "{joiner:?}");
        }
        // Each Han ideograph is a word; a Thai or Khmer run is one until a space or a
        // zero-width space separates it.
        assert_eq!(count_words("南海事件"), 4);
        assert_eq!(count_words("สวัสดีครับ ผมชื่อ"), 2);
        assert_eq!(count_words("สวัสดี\u{200b}ครับ"), 2);
        assert_eq!(count_words("ខ្ញុំស្រលាញ់"), 1);
        assert_eq!(count_words("ASEAN สวัสดี ASEAN"), 3);
    }
}
