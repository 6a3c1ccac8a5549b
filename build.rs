//! Build script: napi's link setup, and the BPE tables for r50k_base / p50k_base.
//!
//! cl100k_base and o200k_base come prebuilt from the `bpe-openai` crate. For r50k_base and
//! p50k_base we build the same kind of table (the `bpe` crate's `BytePairEncoding`) here, at
//! build time, from tiktoken-rs's copy of OpenAI's rank files, and serialize it into OUT_DIR;
//! `src/tokens/engine.rs` embeds the result with `include_bytes!` and deserializes it once on
//! first use. Nothing is downloaded, at build time or at run time.

use std::path::PathBuf;

fn main() {
    napi_build::setup();
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // r50k_base: ranks 0..50255 (50256 is the special <|endoftext|>).
    // p50k_base: the same 50256 ranks plus 50257..=50280 (runs of 2 to 25 spaces).
    // Dropping the special token's id keeps every ordinary token's relative order, which is
    // all BPE needs: the counts are those of tiktoken's `encode_ordinary`.
    let r50k = tiktoken_rs::r50k_base().expect("tiktoken-rs r50k_base table");
    write_table(
        &out,
        "r50k_base",
        (0..50256).map(|rank| token(&r50k, rank)).collect(),
    );
    let p50k = tiktoken_rs::p50k_base().expect("tiktoken-rs p50k_base table");
    write_table(
        &out,
        "p50k_base",
        (0..50256)
            .chain(50257..=50280)
            .map(|rank| token(&p50k, rank))
            .collect(),
    );
}

fn token(bpe: &tiktoken_rs::CoreBPE, rank: u32) -> Vec<u8> {
    bpe.decode_bytes(&[rank])
        .expect("every ordinary rank decodes")
}

fn write_table(out: &std::path::Path, name: &str, tokens: Vec<Vec<u8>>) {
    use serde::Serialize;
    // The hash factor bpe-openai uses for its tables; it also leaves these two free of
    // collisions (`from_dictionary` asserts that, and that every token encodes to itself).
    let bpe = bpe::byte_pair_encoding::BytePairEncoding::from_dictionary(
        tokens,
        Some(17846336922010275747),
    );
    let file =
        std::fs::File::create(out.join(format!("bpe_{name}.dict"))).expect("create table file");
    let mut ser = rmp_serde::Serializer::new(std::io::BufWriter::new(file));
    bpe.serialize(&mut ser).expect("serialize table");
}
