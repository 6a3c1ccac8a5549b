//! The four OpenAI encodings the counter knows, by their tiktoken names.

use std::fmt;
use std::str::FromStr;

use crate::error::{Code, Error};

/// A BPE encoding, named as in OpenAI's tiktoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GPT-4, GPT-3.5-turbo, text-embedding-3-*.
    Cl100kBase,
    /// GPT-4o, GPT-4.1, GPT-5, o1, o3, o4-mini.
    O200kBase,
    /// text-davinci-002/003, code-davinci-*.
    P50kBase,
    /// GPT-3 (davinci, curie, babbage, ada) and GPT-2.
    R50kBase,
}

impl Encoding {
    /// Every encoding, in the order the warm-up thread loads them.
    pub const ALL: [Encoding; 4] = [
        Encoding::Cl100kBase,
        Encoding::O200kBase,
        Encoding::P50kBase,
        Encoding::R50kBase,
    ];

    /// The tiktoken name (`"cl100k_base"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
            Encoding::P50kBase => "p50k_base",
            Encoding::R50kBase => "r50k_base",
        }
    }

    /// The encoding named `name`, or `ERR_UNKNOWN_ENCODING` (a `RangeError`) naming the value
    /// and listing the valid names. Names are exact (lower case), as in tiktoken.
    pub fn parse(name: &str) -> Result<Encoding, Error> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.as_str() == name)
            .ok_or_else(|| {
                Error::new(
                    Code::UnknownEncoding,
                    format!(
                        "unknown encoding {name:?}: expected one of {}",
                        Encoding::ALL
                            .map(|e| format!("'{}'", e.as_str()))
                            .join(", ")
                    ),
                )
            })
    }
}

impl FromStr for Encoding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Encoding::parse(s)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Encoding::ALL {
            assert_eq!(Encoding::parse(e.as_str()), Ok(e));
            assert_eq!(e.to_string().parse::<Encoding>(), Ok(e));
        }
    }

    #[test]
    fn unknown_names_are_range_errors_that_list_the_valid_ones() {
        for bad in ["", "CL100K_BASE", "gpt2", "o200k_harmony", "cl100k_base "] {
            let err = Encoding::parse(bad).expect_err(bad);
            assert_eq!(err.code, Code::UnknownEncoding);
            assert_eq!(err.code.as_str(), "ERR_UNKNOWN_ENCODING");
            assert_eq!(err.code.class(), crate::error::JsClass::RangeError);
            assert!(err.message.contains(&format!("{bad:?}")), "{}", err.message);
            for e in Encoding::ALL {
                assert!(err.message.contains(e.as_str()), "{}", err.message);
            }
        }
    }
}
