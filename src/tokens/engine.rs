//! The BPE tables and the counting function.
//!
//! Every encoding is counted by GitHub's `bpe` crate (linear time in the input, also on
//! adversarial text such as megabytes of one letter, where tiktoken's merge loop and
//! fancy-regex pre-tokenizer degrade or fail). cl100k_base and o200k_base use the tables
//! `bpe-openai` ships; r50k_base and p50k_base use tables `build.rs` makes from OpenAI's rank
//! files (via tiktoken-rs) at build time. Each table is embedded in the binary and
//! deserialized once, on first use (or ahead of it by [`warm`] on a background thread).

use std::cell::RefCell;
use std::sync::OnceLock;

use bpe_openai::byte_pair_encoding::BytePairEncoding;
use regex_automata::meta::{Cache, Regex};
use regex_automata::{Anchored, Input};

use super::Encoding;

// The pre-tokenizers: OpenAI tiktoken's split patterns, written as bpe-openai writes them
// (its `src/lib.rs`): the negative look-ahead `\s+(?!\S)`, which `regex-automata` lacks,
// becomes a second pattern `\s+\s` that matches one whitespace character too many, and the
// splitter gives that character back (the `true` flag). Patterns are tried in order
// (leftmost-first), as the alternatives of tiktoken's one regex are.

/// cl100k_base: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
/// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`.
const CL100K_PATTERNS: [(&str, bool); 3] = [
    (
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+$",
        false,
    ),
    ("\\s+\\s", true),
    ("\\s+", false),
];

/// o200k_base: tiktoken's pattern with its case-aware letter runs and contractions.
const O200K_PATTERN_1: &str = concat!(
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|\\p{N}{1,3}",
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*",
    "|\\s*[\\r\\n]+",
    "|\\s+$",
);
const O200K_PATTERNS: [(&str, bool); 3] =
    [(O200K_PATTERN_1, false), ("\\s+\\s", true), ("\\s+", false)];

/// GPT-2's pre-tokenizer (`r50k_base`, `p50k_base`): tiktoken's
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`.
const GPT2_PATTERNS: [(&str, bool); 3] = [
    (
        "'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+$",
        false,
    ),
    ("\\s+\\s", true),
    ("\\s", false),
];

/// A BPE table and the pre-tokenizer that splits text into the pieces BPE encodes.
struct Engine {
    bpe: &'static BytePairEncoding,
    pre: Regex,
    /// For each pattern, whether its last character is a look-ahead to give back.
    lookahead: [bool; 3],
}

impl Engine {
    fn new(bpe: &'static BytePairEncoding, patterns: &[(&str, bool); 3]) -> Engine {
        // Constant patterns: compiling them cannot fail for a caller's input.
        let pre = Regex::new_many(&patterns.map(|p| p.0)).expect("pre-tokenizer patterns compile");
        Engine {
            bpe,
            pre,
            lookahead: patterns.map(|p| p.1),
        }
    }

    /// Tokens of `text`: the sum of the BPE counts of its pre-tokenizer pieces. `cache` is
    /// the regex's scratch space, one per thread (a shared one costs a lock per piece).
    fn count(&self, text: &str, cache: &mut Cache) -> usize {
        let bpe = self.bpe;
        let mut total = 0;
        let mut start = 0;
        while start < text.len() {
            let rest = &text[start..];
            let input = Input::new(rest).anchored(Anchored::Yes);
            let mut end = match self.pre.search_with(cache, &input) {
                Some(m) => {
                    let mut end = m.end();
                    if self.lookahead[m.pattern().as_usize()] {
                        // Give back the look-ahead character (`\s+\s` matches at least two).
                        end -= rest[..end].chars().next_back().map_or(0, char::len_utf8);
                    }
                    end
                }
                // The patterns match every character, so this does not happen; counting
                // the rest as one piece keeps the function total.
                None => rest.len(),
            };
            if end == 0 {
                end = rest.chars().next().map_or(rest.len(), char::len_utf8);
            }
            total += bpe.count(&rest.as_bytes()[..end]);
            start += end;
        }
        total
    }
}

static R50K: OnceLock<BytePairEncoding> = OnceLock::new();
static P50K: OnceLock<BytePairEncoding> = OnceLock::new();

fn gpt2_table(
    cell: &'static OnceLock<BytePairEncoding>,
    bytes: &[u8],
) -> &'static BytePairEncoding {
    // The table was produced and checked by build.rs for this very `bpe` version (pinned in
    // Cargo.toml): a failure here would be a corrupt binary, not a caller's mistake.
    cell.get_or_init(|| rmp_serde::from_slice(bytes).expect("embedded BPE table is valid"))
}

fn index(enc: Encoding) -> usize {
    match enc {
        Encoding::Cl100kBase => 0,
        Encoding::O200kBase => 1,
        Encoding::P50kBase => 2,
        Encoding::R50kBase => 3,
    }
}

static ENGINES: [OnceLock<Engine>; 4] = [const { OnceLock::new() }; 4];

/// The engine of `enc`, loading its table on first use (once per process; concurrent
/// first users wait for the one load).
fn engine(enc: Encoding) -> &'static Engine {
    const R50K_BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bpe_r50k_base.dict"));
    const P50K_BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bpe_p50k_base.dict"));
    ENGINES[index(enc)].get_or_init(|| match enc {
        Encoding::Cl100kBase => Engine::new(&bpe_openai::cl100k_base().bpe, &CL100K_PATTERNS),
        Encoding::O200kBase => Engine::new(&bpe_openai::o200k_base().bpe, &O200K_PATTERNS),
        Encoding::R50kBase => Engine::new(gpt2_table(&R50K, R50K_BYTES), &GPT2_PATTERNS),
        Encoding::P50kBase => Engine::new(gpt2_table(&P50K, P50K_BYTES), &GPT2_PATTERNS),
    })
}

thread_local! {
    /// Each thread's regex scratch space, per encoding (kept: the lazy DFA inside grows
    /// its states once and reuses them).
    static CACHES: RefCell<[Option<Cache>; 4]> = const { RefCell::new([None, None, None, None]) };
}

/// Counts `text` with `e` on this thread, with this thread's cache.
fn count_here(e: &'static Engine, enc: Encoding, text: &str) -> usize {
    CACHES.with(|c| match c.try_borrow_mut() {
        Ok(mut caches) => {
            let cache = caches[index(enc)].get_or_insert_with(|| e.pre.create_cache());
            e.count(text, cache)
        }
        // Re-entered on this thread (not something the counter does): a fresh cache.
        Err(_) => e.count(text, &mut e.pre.create_cache()),
    })
}

/// Texts at least this long are split and counted on several threads.
const PARALLEL_MIN_BYTES: usize = 128 * 1024;
/// The least work worth a thread of its own.
const PARALLEL_PART_BYTES: usize = 64 * 1024;

/// Number of tokens of `text` in `enc`: exactly the length of OpenAI tiktoken's
/// `encode_ordinary(text)`. Text that looks like a special token (`<|endoftext|>`,
/// `<|im_start|>`, ...) is ordinary text here, as in `encode_ordinary`.
///
/// Counts on the calling thread only, so that a worker thread counting in the background
/// leaves the other CPUs (and the event loop's) alone; [`count_tokens_parallel`] is for a
/// caller that waits for the result anyway.
///
/// The first call for an encoding loads its table (tens of milliseconds for o200k_base);
/// call [`warm`] ahead of time, off the thread that must not wait.
pub fn count_tokens(text: &str, enc: Encoding) -> usize {
    if text.is_empty() {
        return 0;
    }
    count_here(engine(enc), enc, text)
}

/// [`count_tokens`] on all CPUs: a text of 128 KiB or more is cut at safe points (see
/// [`safe_cuts`]) into one part per CPU, counted in parallel; the parts' counts add up to
/// the whole's exactly. For callers that block until the count is done.
pub fn count_tokens_parallel(text: &str, enc: Encoding) -> usize {
    let e = engine(enc);
    if text.len() >= PARALLEL_MIN_BYTES {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parts = safe_cuts(text, threads.min(text.len() / PARALLEL_PART_BYTES));
        if parts.len() > 1 {
            return std::thread::scope(|s| {
                let handles: Vec<_> = parts[1..]
                    .iter()
                    .map(|part| s.spawn(move || count_here(e, enc, part)))
                    .collect();
                // This thread counts the first part itself. A failed join (a panic in a
                // part, which the engine does not do) propagates as a panic, which the
                // binding layer turns into ERR_INTERNAL.
                let first = count_here(e, enc, parts[0]);
                first
                    + handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                        .sum::<usize>()
            });
        }
    }
    count_tokens(text, enc)
}

/// Cuts `text` into up to `n` parts of about equal size, only where every encoding's
/// pre-tokenizer must break and where tokenizing the parts separately gives the same pieces
/// as tokenizing the whole: before a space that follows an ASCII letter and precedes one
/// (`"word| word"`). No pre-token can contain such a space together with the letter before
/// it (letter runs never take a space; only an apostrophe extends them, and only as a
/// contraction), the piece that ends at the cut ends there whatever follows (no look-ahead
/// applies to a letter run), and the piece that starts there (`" word"`) starts a piece
/// in the whole text too (matching is anchored at piece starts, with no look-behind). So
/// the counts of the parts add up exactly to the count of the whole. Text without such a
/// point (minified JSON, CJK) stays whole.
pub fn safe_cuts(text: &str, n: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut parts = Vec::with_capacity(n.max(1));
    let mut start = 0;
    for k in 1..n {
        let target = (bytes.len() * k / n).max(start + 1);
        let Some(cut) = (target..bytes.len().saturating_sub(1)).find(|&i| {
            bytes[i] == b' '
                && bytes[i - 1].is_ascii_alphabetic()
                && bytes[i + 1].is_ascii_alphabetic()
        }) else {
            break;
        };
        // `cut` is an ASCII space, hence a character boundary.
        parts.push(&text[start..cut]);
        start = cut;
    }
    parts.push(&text[start..]);
    parts
}

/// Loads the table of `enc` now if it is not loaded yet (no-op otherwise).
pub fn warm(enc: Encoding) {
    let _ = engine(enc);
}

/// Loads the tables of `encodings`, in order, on a new background thread, so that later
/// first uses find them ready. Returns at once; a caller that needs a table before the
/// thread reaches it simply loads it itself (the loads are once-only, never duplicated).
pub fn warm_in_background(
    encodings: Vec<Encoding>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("token-tables".into())
        .spawn(move || {
            // Loading all four takes ~0.1 s of CPU, at the process's start: it must not take
            // the CPU from the event loop or the Redis tier's first reads.
            crate::background::batch_priority();
            encodings.into_iter().for_each(warm)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiktoken_rs::CoreBPE;

    fn tiktoken(enc: Encoding) -> &'static CoreBPE {
        match enc {
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::P50kBase => tiktoken_rs::p50k_base_singleton(),
            Encoding::R50kBase => tiktoken_rs::r50k_base_singleton(),
        }
    }

    /// Text that exercises every branch of the pre-tokenizers: contractions in both cases,
    /// letters of several scripts and cases, combining marks, digit runs, punctuation runs,
    /// whitespace runs before words and at the end, CRLF, special-token look-alikes.
    const SAMPLES: &[&str] = &[
        "Hello, world! It's a test; we'LL see what THEY'RE doing.",
        "  leading spaces\tand\ttabs\n\n\n  trailing   ",
        "1234567890 12 3.14159 1,000,000 ١٢٣ ½",
        "fn main() {\r\n    let x = vec![1, 2, 3];\r\n}\r\n",
        "Größe Straße Mädchen über. 東京都渋谷区。これはテストです！中文字符。",
        "emoji 👨‍👩‍👧‍👦 🇩🇪 ❤️ 👍🏽 e\u{301} Z\u{351}\u{36b}",
        "<|endoftext|> <|im_start|>user<|im_end|> <|fim_prefix|><|endofprompt|>",
        "HTTPServer iPhone XMLHttpRequest camelCase SCREAMING_CASE",
        "\u{a0}\u{3000}\u{2003} mixed\u{a0}spaces \u{200b}zero width",
        "",
        " ",
        "\n",
        "a",
        "                                                            x",
        "))))]]]]}}}}....,,,,!!!!????",
    ];

    #[test]
    fn counts_equal_tiktoken_encode_ordinary_for_every_encoding() {
        for enc in Encoding::ALL {
            let tik = tiktoken(enc);
            for s in SAMPLES {
                assert_eq!(
                    count_tokens(s, enc),
                    tik.encode_ordinary(s).len(),
                    "{enc} {s:?}"
                );
            }
            let all = SAMPLES.join("");
            assert_eq!(
                count_tokens(&all, enc),
                tik.encode_ordinary(&all).len(),
                "{enc} all"
            );
        }
    }

    #[test]
    fn special_token_text_is_ordinary() {
        // tiktoken's `encode` would refuse it (disallowed special) or give 1 token; as
        // ordinary text it is several.
        for enc in Encoding::ALL {
            let n = count_tokens("<|endoftext|>", enc);
            assert!(n > 1, "{enc}: {n}");
            assert_eq!(n, tiktoken(enc).encode_ordinary("<|endoftext|>").len());
        }
    }

    #[test]
    fn long_single_pieces_are_counted() {
        // One long pre-tokenizer piece each (tiktoken's fancy-regex pre-tokenizer overflows
        // its stack on o200k_base at about 1 MB of spaces; the bpe crate is linear). Sizes are
        // kept small enough for an unoptimized test build; the benchmark covers 100 MB.
        for s in ["a".repeat(50_000), " ".repeat(50_000), "7".repeat(50_000)] {
            for enc in Encoding::ALL {
                assert_eq!(
                    count_tokens(&s, enc),
                    tiktoken(enc).encode_ordinary(&s).len(),
                    "{enc}"
                );
            }
        }
    }

    #[test]
    fn parts_cut_at_safe_points_add_up_to_the_whole() {
        let text = SAMPLES.join(" and ").repeat(40);
        for enc in Encoding::ALL {
            let whole = tiktoken(enc).encode_ordinary(&text).len();
            for n in [2, 3, 7, 50] {
                let parts = safe_cuts(&text, n);
                assert!(parts.len() > 1, "{n}");
                assert_eq!(parts.concat(), text);
                let sum: usize = parts
                    .iter()
                    .map(|p| tiktoken(enc).encode_ordinary(p).len())
                    .sum();
                assert_eq!(sum, whole, "{enc} in {n} parts");
            }
            // The parallel path (the text is over PARALLEL_MIN_BYTES).
            let big = text.repeat(6);
            assert!(big.len() >= PARALLEL_MIN_BYTES);
            assert_eq!(
                count_tokens(&big, enc),
                tiktoken(enc).encode_ordinary(&big).len(),
                "{enc}"
            );
        }
        assert_eq!(safe_cuts("东京都渋谷区".repeat(100).as_str(), 4).len(), 1);
        assert_eq!(safe_cuts("", 4), vec![""]);
        assert_eq!(safe_cuts("a b", 2), vec!["a", " b"]);
    }

    #[test]
    fn known_counts() {
        assert_eq!(count_tokens("hello world", Encoding::Cl100kBase), 2);
        assert_eq!(count_tokens("hello world", Encoding::O200kBase), 2);
        assert_eq!(count_tokens("", Encoding::R50kBase), 0);
        // p50k_base has tokens for runs of spaces that r50k_base lacks.
        let code = "        return x";
        assert!(count_tokens(code, Encoding::P50kBase) < count_tokens(code, Encoding::R50kBase));
    }

    #[test]
    fn warming_is_idempotent_and_concurrent_first_use_is_safe() {
        let h = warm_in_background(Encoding::ALL.to_vec()).expect("spawn");
        let counts: Vec<usize> = Encoding::ALL
            .iter()
            .map(|&e| count_tokens("abc def", e))
            .collect();
        h.join().expect("warm thread");
        warm(Encoding::R50kBase);
        let again: Vec<usize> = Encoding::ALL
            .iter()
            .map(|&e| count_tokens("abc def", e))
            .collect();
        assert_eq!(counts, again);
    }
}
