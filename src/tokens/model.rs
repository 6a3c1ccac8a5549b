//! Which encoding a model uses.

use tiktoken_rs::tokenizer::{get_tokenizer, Tokenizer};

use super::Encoding;
use crate::error::{Code, Error, Result};

/// The encoding of an OpenAI model, by name: OpenAI tiktoken's own table (`model.py`, as kept
/// by the tiktoken-rs crate): exact names first (`gpt-4o`, `o1`, `gpt-4`, `text-davinci-003`,
/// `davinci`, ...), then prefixes for variants (`gpt-4o-2024-08-06`, `gpt-4o-mini`,
/// `gpt-4.1-nano`, `o3-mini`, `o4-mini-2025-04-16`, any `gpt-5*`, `gpt-4-0613`,
/// `gpt-3.5-turbo-0125`, Azure's `gpt-35-turbo`), and fine-tuned names `ft:<base>:...`.
///
/// Three tiktoken encodings are reported as the one of these four they count like, because
/// they differ only in special tokens, which this counter never emits: `gpt2` is
/// `r50k_base`, `p50k_edit` is `p50k_base` and `o200k_harmony` (gpt-oss) is `o200k_base`.
///
/// An unknown model is `ERR_UNKNOWN_MODEL` (a `RangeError`) naming it.
pub fn encoding_for_model(model: &str) -> Result<Encoding> {
    match get_tokenizer(model) {
        Some(Tokenizer::O200kBase | Tokenizer::O200kHarmony) => Ok(Encoding::O200kBase),
        Some(Tokenizer::Cl100kBase) => Ok(Encoding::Cl100kBase),
        Some(Tokenizer::P50kBase | Tokenizer::P50kEdit) => Ok(Encoding::P50kBase),
        Some(Tokenizer::R50kBase | Tokenizer::Gpt2) => Ok(Encoding::R50kBase),
        None => Err(Error::new(
            Code::UnknownModel,
            format!(
                "unknown model {model:?}: no known OpenAI model has this name; pass an encoding \
                 ('o200k_base' for current OpenAI models, 'cl100k_base' for gpt-4 / gpt-3.5-turbo) instead"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Encoding::*;

    #[test]
    fn current_and_legacy_models() {
        let table = [
            ("gpt-4o", O200kBase),
            ("gpt-4o-mini", O200kBase),
            ("gpt-4o-2024-08-06", O200kBase),
            ("gpt-4o-mini-2024-07-18", O200kBase),
            ("chatgpt-4o-latest", O200kBase),
            ("gpt-4.1", O200kBase),
            ("gpt-4.1-mini", O200kBase),
            ("gpt-4.1-nano", O200kBase),
            ("gpt-4.1-2025-04-14", O200kBase),
            ("gpt-4.5-preview", O200kBase),
            ("o1", O200kBase),
            ("o1-mini", O200kBase),
            ("o1-2024-12-17", O200kBase),
            ("o3", O200kBase),
            ("o3-mini", O200kBase),
            ("o3-pro", O200kBase),
            ("o4-mini", O200kBase),
            ("o4-mini-2025-04-16", O200kBase),
            ("gpt-5", O200kBase),
            ("gpt-5-mini", O200kBase),
            ("gpt-5-nano", O200kBase),
            ("gpt-5-2025-08-07", O200kBase),
            ("gpt-5.1-codex", O200kBase),
            ("gpt-oss-20b", O200kBase),
            ("gpt-4", Cl100kBase),
            ("gpt-4-0613", Cl100kBase),
            ("gpt-4-32k", Cl100kBase),
            ("gpt-4-turbo", Cl100kBase),
            ("gpt-4-turbo-2024-04-09", Cl100kBase),
            ("gpt-3.5-turbo", Cl100kBase),
            ("gpt-3.5-turbo-0125", Cl100kBase),
            ("gpt-35-turbo", Cl100kBase),
            ("text-embedding-3-small", Cl100kBase),
            ("text-embedding-ada-002", Cl100kBase),
            ("ft:gpt-4o-mini-2024-07-18:acme::abc123", O200kBase),
            ("text-davinci-003", P50kBase),
            ("text-davinci-002", P50kBase),
            ("code-davinci-002", P50kBase),
            ("text-davinci-edit-001", P50kBase),
            ("davinci", R50kBase),
            ("curie", R50kBase),
            ("text-davinci-001", R50kBase),
            ("gpt2", R50kBase),
        ];
        for (model, enc) in table {
            assert_eq!(encoding_for_model(model), Ok(enc), "{model}");
        }
    }

    #[test]
    fn unknown_models_are_range_errors_naming_the_model() {
        for bad in [
            "",
            "GPT-4o",
            "claude-3-opus",
            "llama-3",
            "gpt-6",
            "o2",
            " gpt-4o",
        ] {
            let err = encoding_for_model(bad).expect_err(bad);
            assert_eq!(err.code.as_str(), "ERR_UNKNOWN_MODEL");
            assert_eq!(err.code.class(), crate::error::JsClass::RangeError);
            assert!(err.message.contains(&format!("{bad:?}")), "{}", err.message);
        }
    }
}
