//! The BPE tables and the counting function.
//!
//! Every encoding is counted by GitHub's `bpe` crate (linear time in the input, also on
//! adversarial text such as megabytes of one letter, where tiktoken's merge loop and
//! fancy-regex pre-tokenizer degrade or fail). cl100k_base and o200k_base use the tables
//! `bpe-openai` ships; r50k_base and p50k_base use tables `build.rs` makes from OpenAI's rank
//! files (via tiktoken-rs) at build time. Each table is embedded in the binary and
//! deserialized once, on first use (or ahead of it by [`warm`] on a background thread).

use std::sync::OnceLock;

use bpe_openai::byte_pair_encoding::BytePairEncoding;
use bpe_openai::Tokenizer;

use super::Encoding;

/// GPT-2's pre-tokenizer (`r50k_base`, `p50k_base`): tiktoken's
/// `'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s`, with the
/// negative look-ahead written the way bpe-openai writes it for cl100k_base: `\s+\s` matches
/// one whitespace character too many and the splitter gives that character back.
const GPT2_PATTERNS: [(&str, bool); 3] = [
    (
        "'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+$",
        false,
    ),
    ("\\s+\\s", true),
    ("\\s", false),
];

static R50K: OnceLock<Tokenizer> = OnceLock::new();
static P50K: OnceLock<Tokenizer> = OnceLock::new();

fn gpt2_tokenizer(table: &[u8]) -> Tokenizer {
    // The table was produced and checked by build.rs for this very `bpe` version (pinned in
    // Cargo.toml), and the patterns are constants: neither depends on input, so a failure
    // here would be a corrupt binary, not a caller's mistake.
    let bpe: BytePairEncoding = rmp_serde::from_slice(table).expect("embedded BPE table is valid");
    Tokenizer::new_lookahead(bpe, &GPT2_PATTERNS, false).expect("GPT-2 pre-tokenizer compiles")
}

/// The tokenizer of `enc`, loading its table on first use (once per process; concurrent
/// first users wait for the one load).
fn tokenizer(enc: Encoding) -> &'static Tokenizer {
    match enc {
        Encoding::Cl100kBase => bpe_openai::cl100k_base(),
        Encoding::O200kBase => bpe_openai::o200k_base(),
        Encoding::R50kBase => R50K.get_or_init(|| {
            gpt2_tokenizer(include_bytes!(concat!(
                env!("OUT_DIR"),
                "/bpe_r50k_base.dict"
            )))
        }),
        Encoding::P50kBase => P50K.get_or_init(|| {
            gpt2_tokenizer(include_bytes!(concat!(
                env!("OUT_DIR"),
                "/bpe_p50k_base.dict"
            )))
        }),
    }
}

/// Number of tokens of `text` in `enc`: exactly the length of OpenAI tiktoken's
/// `encode_ordinary(text)`. Text that looks like a special token (`<|endoftext|>`,
/// `<|im_start|>`, ...) is ordinary text here, as in `encode_ordinary`.
///
/// The first call for an encoding loads its table (tens of milliseconds for o200k_base);
/// call [`warm`] ahead of time, off the thread that must not wait.
pub fn count_tokens(text: &str, enc: Encoding) -> usize {
    if text.is_empty() {
        return 0;
    }
    tokenizer(enc).count(text)
}

/// Loads the table of `enc` now if it is not loaded yet (no-op otherwise).
pub fn warm(enc: Encoding) {
    let _ = tokenizer(enc);
}

/// Loads the tables of `encodings`, in order, on a new background thread, so that later
/// first uses find them ready. Returns at once; a caller that needs a table before the
/// thread reaches it simply loads it itself (the loads are once-only, never duplicated).
pub fn warm_in_background(
    encodings: Vec<Encoding>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("token-tables".into())
        .spawn(move || encodings.into_iter().for_each(warm))
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
