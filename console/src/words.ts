// Words as the node counts them (adi_core::text::count_words): whitespace and invisible format
// characters separate words, the rest by Unicode word boundaries; in scripts written without
// spaces (Thai, Lao, Myanmar, Khmer, the Tai scripts) a run that nothing separates is one word.
// The node's count is the one that holds; this one tells the officer before sending.
const wordSegmenter = new Intl.Segmenter(undefined, { granularity: "word" });
const wordSeparators = /[\s\p{Cf}]+/u;
const unspacedScript = /^[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u1950-\u19ff\u1a20-\u1aaf\ua9e0-\ua9ff\uaa60-\uaadf]/u;
// Each Han ideograph and each hiragana is a word, as word processors count Chinese and Japanese.
const eachAWord = /[\p{Script=Han}\p{Script=Hiragana}]/gu;
export function wordCount(text: string): number {
  let n = 0;
  for (const piece of text.split(wordSeparators)) {
    let runEnd = -1;
    for (const s of wordSegmenter.segment(piece)) {
      if (!s.isWordLike) continue;
      const unspaced = unspacedScript.test(s.segment);
      const ideographs = (s.segment.match(eachAWord) || []).length;
      if (ideographs) n += ideographs;
      else if (!(unspaced && runEnd === s.index)) n++;
      runEnd = unspaced ? s.index + s.segment.length : -1;
    }
  }
  return n;
}

// The nodes of this member's active/standby pair, this one first (from /healthz). A page whose node
// stops answering, or answers as the standby, for PAIR_MISSES_MAX checks in a row moves to the
// other node, which has taken over or is taking over (its standby page waits until it has). It
// moves only once the other node answers at all, so that it never lands on the browser's error
// page, and it says where it comes from, so that a standby does not send it back to the node that
// stopped answering it.
